"""`nerfedit eval --source SRC --edited OUT --source-prompt … --target-prompt …`: the image-editing papers' metrics.

SRC and OUT are two images, or two folders of views matched by file name (e.g. a run's held-out renders before and
after the edit). Everything the user gave (metric names, prompts, model options, the pairs, their sizes, the JSON
path) is checked before any model is loaded; bad input is one line and exit code 2, and nothing is written. A metric
whose model cannot be had here is reported unavailable, with its reason on one line, and the others still run.
The metrics are `nerfedit.eval.metrics`; their models are loaded by `nerfedit.eval.metric_models`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from nerfedit import commandline as cl
from nerfedit.errors import UserError

SUMMARY = "the papers' metrics of an edit: CLIP score and direction, LPIPS, DINO structure, PSNR, SSIM"

METRICS = {
    "clip_score": "CLIP score of the edit and the target prompt: 100·max(cos, 0), as torchmetrics' CLIPScore (higher: closer)",
    "clip_direction": "CLIP directional similarity: cos(change of image embedding, change of text embedding) (higher: follows the prompts)",
    "lpips": "LPIPS distance from the source (lower: closer)",
    "dino_structure": "Splice's DINO-ViT key self-similarity distance from the source (lower: structure kept)",
    "psnr": "PSNR from the source in dB (identical images: 100)",
    "ssim": "SSIM with the source (1: identical)",
    "judge": "the judge's reads (colour, shape, floor) of each source and edited image (toy world only)",
}
"""Metric name → what it measures (the JSON's `about`)."""
DEFAULT_METRICS = ("clip_score", "clip_direction", "lpips", "dino_structure", "psnr", "ssim")
"""Run unless --metrics says otherwise; `judge` is added with --prior toy."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

Pair = Tuple[str, Path, Path]


def add_parser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `eval` command to a sub-parser collection."""
    from nerfedit.eval.metric_models import DEFAULT_CLIP, DEFAULT_DINO, LPIPS_BACKBONES

    parser = subparsers.add_parser(
        "eval",
        help=SUMMARY,
        formatter_class=cl.HelpFormatter,
        description=cl.paragraph(
            "Score an edit with the metrics of the image- and NeRF-editing papers: CLIP score and CLIP directional "
            "similarity (Instruct-NeRF2NeRF, InstructPix2Pix), LPIPS, Splice's DINO-ViT structure distance, PSNR and "
            "SSIM; with --prior toy, also what the judge reads. SRC and OUT are two images or two folders of views "
            "matched by file name. Models come from a local folder/file or the local caches; one that cannot be had "
            "is reported unavailable with its reason, and the other metrics still run."
        ),
    )
    parser.add_argument("--source", type=Path, required=True, metavar="SRC", help="the source image, or a folder of source views")
    parser.add_argument("--edited", type=Path, required=True, metavar="OUT", help="the edited image, or a folder of edited views (same file names)")
    parser.add_argument("--source-prompt", default=None, help="what the source shows (needed by clip_direction)")
    parser.add_argument("--target-prompt", default=None, help="what the edit should show (needed by clip_score, clip_direction)")
    parser.add_argument(
        "--metrics", default=None, help=f"comma-separated subset of: {', '.join(METRICS)} (default: all but judge; judge too with --prior toy)"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results here as JSON")
    cl.add_overwrite_option(parser)
    models = parser.add_argument_group("models (a hub id is read from the local Hugging Face cache; downloaded only when HF_HUB_OFFLINE is unset)")
    models.add_argument("--clip", default=DEFAULT_CLIP, metavar="MODEL", help="CLIP: hub id or local folder (ViT-L/14, as InstructPix2Pix's CLIP metrics)")
    models.add_argument("--dino", default=DEFAULT_DINO, metavar="MODEL", help="DINO ViT or DINOv2: hub id or local folder (Splice's ViT-B/8)")
    models.add_argument("--lpips-net", choices=tuple(LPIPS_BACKBONES), default="alex", help="LPIPS backbone")
    models.add_argument(
        "--lpips-backbone", type=Path, default=None, metavar="FILE",
        help="torchvision state dict of the LPIPS backbone (e.g. alexnet-owt-7be5be79.pth) (default: torch's hub cache, if there)",
    )
    models.add_argument("--prior", default=None, help="the prior the edit was made with; toy adds the judge's reads (it knows only the toy world)")
    models.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default: cuda if available, else cpu)")
    cl.add_threads_option(models)
    parser.set_defaults(func=run_eval)
    return parser


# ---- checks made before any model is loaded ----------------------------------------------------------


def chosen_metrics(text: Optional[str], prior: Optional[str]) -> List[str]:
    """The metrics of `--metrics` (in the table's order), or the default set; unknown names are a `UserError`."""
    if text is None:
        return [*DEFAULT_METRICS, *(["judge"] if prior == "toy" else [])]
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(f"--metrics: unknown metric {', '.join(repr(n) for n in unknown) or 'list (empty)'}; choose from {', '.join(METRICS)}")
    if "judge" in names and prior != "toy":
        raise UserError("--metrics judge: the judge reads only the toy world's images; pass --prior toy")
    return [name for name in METRICS if name in names]


def check_prompts(args: argparse.Namespace, metrics: Sequence[str]) -> None:
    """The prompts the chosen CLIP metrics need are given and not blank (whitespace collapsed in `args`)."""
    needs = {"--target-prompt": ("clip_score", "clip_direction"), "--source-prompt": ("clip_direction",)}
    for option, users in needs.items():
        attribute = option[2:].replace("-", "_")
        text = getattr(args, attribute)
        used_by = [name for name in users if name in metrics]
        if text is None and used_by:
            raise UserError(f"{used_by[0]} needs {option}; give it, or leave {used_by[0]} out of --metrics")
        if text is not None:
            setattr(args, attribute, cl.prompt_text(text, option))


def _images_in(folder: Path) -> Dict[str, Path]:
    return {path.name: path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES}


def _some(names: Sequence[str], most: int = 3) -> str:
    return ", ".join(names[:most]) + (f" (and {len(names) - most} more)" if len(names) > most else "")


def match_pairs(source: Path, edited: Path) -> List[Pair]:
    """(name, source file, edited file) of two images, or of two folders' images matched by file name."""
    for option, path in (("--source", source), ("--edited", edited)):
        if not path.exists():
            raise UserError(f"{option} {path}: no such file or folder")
    if source.is_file() and edited.is_file():
        return [(source.name, source, edited)]
    if source.is_dir() != edited.is_dir():
        raise UserError(f"--source {source} and --edited {edited}: give two images or two folders, not one of each")
    sources, edits = _images_in(source), _images_in(edited)
    if not sources:
        raise UserError(f"--source {source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    if set(sources) != set(edits):
        only_source, only_edited = sorted(set(sources) - set(edits)), sorted(set(edits) - set(sources))
        parts = [f"only in {folder}: {_some(names)}" for folder, names in ((source, only_source), (edited, only_edited)) if names]
        raise UserError(f"--source and --edited folders hold different file names ({'; '.join(parts)}); views are matched by name")
    return [(name, sources[name], edits[name]) for name in sorted(sources)]


def check_json(path: Optional[Path], pairs: Sequence[Pair], overwrite: bool) -> None:
    """`--json` can be written: a writable folder, not an input image, not an existing file unless `overwrite`."""
    from nerfedit.outputs import check_new_file, check_writable_folder

    if path is None:
        return
    inputs = {p.resolve() for _, a, b in pairs for p in (a, b)}
    if path.resolve() in inputs:
        raise UserError(f"--json {path} is one of the input images; choose another name")
    check_writable_folder(path.parent, f"--json {path}")
    check_new_file(path, "--json", overwrite)


def read_pairs(pairs: Sequence[Pair]):
    """Every image as float [H, W, 3] in [0, 1]; a pair of two sizes is a `UserError` (nothing is resized)."""
    from nerfedit.image.io import load_image

    images = []
    for name, source, edited in pairs:
        a, b = load_image(source), load_image(edited)
        if a.shape != b.shape:
            raise UserError(
                f"{name}: the source is {a.shape[1]}×{a.shape[0]} px and the edit {b.shape[1]}×{b.shape[0]} px; "
                "a pair must have one size (nerfedit eval does not resize)"
            )
        images.append((a, b))
    return images


# ---- the work ----------------------------------------------------------------------------------------


def run_eval(args: argparse.Namespace) -> int:
    """Check everything, then load each metric's models and score every pair; print the table, write the JSON."""
    from nerfedit.eval.metric_models import check_file_option, check_model_option

    metrics = chosen_metrics(args.metrics, args.prior)
    check_prompts(args, metrics)
    if {"clip_score", "clip_direction"} & set(metrics):
        check_model_option(args.clip, "--clip")
    if "dino_structure" in metrics:
        check_model_option(args.dino, "--dino")
    if "lpips" in metrics:
        check_file_option(args.lpips_backbone, "--lpips-backbone")
    pairs = match_pairs(args.source, args.edited)
    check_json(args.json, pairs, args.overwrite)
    images = read_pairs(pairs)

    from nerfedit.threads import set_threads, warn_if_oversubscribed

    set_threads(args.threads)
    device = cl.resolve_device(args.device)
    warn_if_oversubscribed(cl.PROG)
    results = score(args, metrics, images, device)
    report = {
        "source": str(args.source),
        "edited": str(args.edited),
        "source_prompt": args.source_prompt,
        "target_prompt": args.target_prompt,
        "views": [name for name, _, _ in pairs],
        "metrics": results,
    }
    print(table(report))
    if args.json is not None:
        from nerfedit.outputs import atomic_write

        text = json.dumps(report, indent=2) + "\n"
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {args.json}")
    return 0


def _summary(values, about: str, **extra) -> Dict[str, object]:
    values = [float(v) for v in values]
    return {"mean": sum(values) / len(values), "per_view": values, **extra, "about": about}


def score(args: argparse.Namespace, metrics: Sequence[str], images, device) -> Dict[str, Dict[str, object]]:
    """metric → {"mean", "per_view", model details, "about"}, or {"unavailable": reason, "about"}."""
    import torch

    from nerfedit.eval import metric_models as mm
    from nerfedit.eval import metrics as m

    pairs = [(torch.from_numpy(a).permute(2, 0, 1)[None], torch.from_numpy(b).permute(2, 0, 1)[None]) for a, b in images]
    results: Dict[str, Dict[str, object]] = {}

    def unavailable(names: Sequence[str], reason: str) -> None:
        for name in names:
            results[name] = {"unavailable": reason, "about": METRICS[name]}

    clip_metrics = [name for name in ("clip_score", "clip_direction") if name in metrics]
    if clip_metrics:
        try:
            model, processor = mm.load_clip(args.clip, device)
        except mm.MetricUnavailable as error:
            unavailable(clip_metrics, str(error))
        else:
            prompts = [args.target_prompt] + ([args.source_prompt] if "clip_direction" in metrics else [])
            text = m.clip_text_embeddings(model, processor, prompts)
            embedded = [m.clip_image_embeddings(model, processor, torch.cat([a, b])) for a, b in pairs]
            source, edited = torch.stack([e[0] for e in embedded]), torch.stack([e[1] for e in embedded])
            if "clip_score" in metrics:
                source_mean = float(m.clip_score(source, text[0]).mean())
                results["clip_score"] = _summary(m.clip_score(edited, text[0]), METRICS["clip_score"], model=args.clip, source_mean=source_mean)
            if "clip_direction" in metrics:
                direction = m.clip_directional_similarity(source, edited, text[1], text[0])
                results["clip_direction"] = _summary(direction, METRICS["clip_direction"], model=args.clip)
            del model, processor
    smallest = min(min(a.shape[-2:]) for a, _ in pairs)
    if "lpips" in metrics and smallest < mm.LPIPS_MIN_SIDE[args.lpips_net]:
        unavailable(["lpips"], f"images of {smallest} px a side; the {args.lpips_net} backbone needs {mm.LPIPS_MIN_SIDE[args.lpips_net]} px or more")
    elif "lpips" in metrics:
        try:
            net = mm.load_lpips(args.lpips_net, args.lpips_backbone, device)
        except mm.MetricUnavailable as error:
            unavailable(["lpips"], str(error))
        else:
            values = [m.lpips_distance(net, a, b)[0] for a, b in pairs]
            results["lpips"] = _summary(values, METRICS["lpips"], model=f"torchmetrics LPIPS ({args.lpips_net})")
            del net
    if "dino_structure" in metrics:
        try:
            dino = mm.load_dino(args.dino, device)
        except mm.MetricUnavailable as error:
            unavailable(["dino_structure"], str(error))
        else:
            values = [m.structure_distance(dino, a, b)[0] for a, b in pairs]
            results["dino_structure"] = _summary(values, METRICS["dino_structure"], model=args.dino)
            del dino
    if "psnr" in metrics:
        results["psnr"] = _summary([m.psnr_per_image(a, b)[0] for a, b in pairs], METRICS["psnr"])
    if "ssim" in metrics:
        results["ssim"] = _summary([m.ssim(a, b)[0] for a, b in pairs], METRICS["ssim"])
    if "judge" in metrics:
        from nerfedit.eval.judging import load_judge_option, read

        judge = load_judge_option("default", device=device)
        per_view = []
        for a, b in pairs:  # pair by pair: views may differ in size (the judge resizes each to its 64 px)
            words = read(judge, torch.cat([a, b]))
            per_view.append({side: {head: words[head][i] for head in words} for i, side in enumerate(("source", "edited"))})
        results["judge"] = {"per_view": per_view, "model": "the shipped judge", "about": METRICS["judge"]}
    return {name: results[name] for name in metrics}


def table(report: Dict[str, object]) -> str:
    """The results as a table: one line per metric (mean over views), and per view what the judge read."""
    views: List[str] = report["views"]  # type: ignore[assignment]
    count = f"{len(views)} view{'s' if len(views) != 1 else ''}"
    lines = [f"{count}: {report['source']} → {report['edited']} (per view in the JSON)", f"{'metric':<16}{'mean':>10}  note"]
    for name, result in report["metrics"].items():  # type: ignore[union-attr]
        if "unavailable" in result:
            lines.append(f"{name:<16}{'—':>10}  unavailable: {result['unavailable']}")
        elif name == "judge":
            for view, reads in zip(views, result["per_view"]):
                said = {side: " ".join(reads[side][head] for head in ("color", "shape", "floor")) for side in ("source", "edited")}
                lines.append(f"{name:<16}{'':>10}  {view}: {said['source']} → {said['edited']}")
        else:
            notes = [{"clip_score": f"100·max(cos,0); the source scores {result.get('source_mean', 0):.2f}", "psnr": "dB"}.get(name, "")]
            notes.append(f"[{result['model']}]" if "model" in result else "")
            lines.append(f"{name:<16}{result['mean']:>10.4f}  {' '.join(n for n in notes if n)}".rstrip())
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`nerfedit ARGV`, with ARGV starting with "eval" (as tests call it): the `nerfedit` dispatcher mounts this module."""
    from nerfedit.cli import main as nerfedit_main

    return nerfedit_main(argv)
