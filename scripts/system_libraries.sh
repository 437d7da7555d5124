#!/usr/bin/env bash
# System libraries that the README's nerfstudio commands load at run time but pip cannot install.
# `ns-export` imports open3d, whose wheel links libusb-1.0 (and, on some images, libGL/libgomp); a fresh Debian
# lacks libusb-1.0-0, so `ns-export pointcloud` failed with "libusb-1.0.so.0: cannot open shared object file".
# Usage: bash scripts/system_libraries.sh PYTHON   (setup.sh runs it). As root with apt-get, it installs what is
# missing; otherwise it prints the exact command to run and exits 3. It never touches a machine that is fine.
set -uo pipefail
PY=${1:-python}

# Debian package of each shared library open3d's wheel may miss on a minimal image.
package_of() {
  case "$1" in
    libusb-1.0.so*) echo libusb-1.0-0 ;;
    libGL.so*) echo libgl1 ;;
    libEGL.so*) echo libegl1 ;;
    libgomp.so*) echo libgomp1 ;;
    libX11.so*) echo libx11-6 ;;
    *) echo "" ;;
  esac
}

updated=0
for _ in 1 2 3 4; do
  error=$("$PY" -c "import open3d" 2>&1 >/dev/null) && { echo "system libraries: open3d (ns-export) loads"; exit 0; }
  library=$(grep -oE "lib[A-Za-z0-9_.+-]+\.so[.0-9]*" <<<"$error" | head -n1)
  package=$(package_of "$library")
  if [ -z "$package" ]; then
    echo "system libraries: 'import open3d' (needed by ns-export) fails:" >&2
    echo "$error" | tail -n 3 >&2
    exit 3
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "system libraries: installing $package ($library, needed by open3d for ns-export)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >/dev/null; then
      [ "$updated" = 1 ] && { echo "system libraries: apt-get install $package failed" >&2; exit 3; }
      apt-get update -qq >/dev/null && updated=1
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >/dev/null || exit 3
    fi
  else
    echo "system libraries: ns-export needs $library; install it with: sudo apt-get install -y $package" >&2
    exit 3
  fi
done
exit 3
