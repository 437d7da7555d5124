"""The rules for every file or folder a command writes, checked before any work (torch-free).

    check_writable_folder  the folder exists (or, for run folders, can be created) and a file can be made in it:
                           tried for real with a temporary file, since permission bits lie (root, read-only
                           mounts, /proc)
    check_new_file         an existing file is replaced only with --overwrite ("nothing the user gave is overwritten")
    atomic_write           write through a temporary file in the same folder and rename, with the mode a plain
                           `open()` would give (0666 minus the umask), not mkstemp's private 0600
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union

from nerfedit.errors import UserError

PathLike = Union[str, os.PathLike]
OVERWRITE_HELP = "replace an existing output file (without it, an existing file is an error)"


def check_writable_folder(folder: PathLike, what: str, create: bool = False) -> Path:
    """`folder` can hold new files. With `create`, a folder that does not exist yet is fine if its nearest
    existing parent can hold it (ns-train makes its run folder itself). Nothing is left behind."""
    folder = Path(folder).expanduser() if str(folder) else Path(".")
    existing = folder
    while not existing.exists():
        if not create:
            raise UserError(f"{what}: folder '{folder}' does not exist")
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what}: '{existing}' is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what}: folder '{existing}' is not writable")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(f"{what}: folder '{existing}' is not writable ({error.strerror or type(error).__name__})") from None
    return folder


def check_new_file(path: PathLike, what: str, overwrite: bool) -> None:
    """An existing `path` is an error unless `overwrite` (then it must be a writable file)."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a folder; give a file name")
    if not overwrite:
        raise UserError(f"{what} '{path}' already exists; pass --overwrite to replace it, or choose another name")
    if not os.access(path, os.W_OK):
        raise UserError(f"{what} '{path}' exists and is not writable")


def file_mode() -> int:
    """The mode `open(path, "w")` would create a file with: 0o666 minus this process's umask."""
    umask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """`write(tmp)` to a temporary file beside `path`, then rename it onto `path`: a failure leaves no partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=str(path.parent))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # mkstemp makes it 0600; the result is an ordinary file of the user's
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
