#!/usr/bin/env python
"""2D editing as a user gets it: held-out colour, shape and floor swaps, edited at `nerfedit edit-image`'s defaults.

N held-out pairs (`--num`, default 32, split in turn over the kinds: 11 colour, 11 shape, 10 floor), drawn from
a seed of their own (`--pairs-seed`), never the training stream; each is a world render and the same scene
with one word swapped:

    colour  "a red cube on a wooden floor" → "a blue cube on a wooden floor"   short: "a red cube" → "a blue cube"
    shape   "a red cube on a wooden floor" → "a red torus on a wooden floor"  short: "a red cube" → "a red torus"
    floor   "a red cube on a wooden floor" → "a red cube on grass"            short: the same (a floor needs naming)

Every pair is edited with every loss (`--losses`, default all of the catalogue), at every edit seed (`--seeds`),
with prompts as full captions and as short phrases (`--prompts`). The settings are edit-image's own, read
from its parser and the catalogue (`nerfedit.eval.edit_settings`); `--steps`, `--lr`, … are explicit
overrides, labelled [non-default] wherever the settings are printed or stored.

Scores (`nerfedit.eval.edit_scores`), per loss, prompt form and kind, pooled over pairs and seeds:
- success: the judge reads the target word (its colour / shape / floor head, by kind)
- keep PSNR, median and mean: source vs edit over the pixels the edit should keep (outside the object for
  colour swaps, outside source and target objects for shape swaps, object + sky for floor swaps)
- SSIM(source, edit): structure preservation (there is no honest object mask of an edit, so no mask IoU)
- PSNR vs target: the edit against the rendered target scene (the world renders the ground truth)
Reference rows: the VAE's reconstruction (no edit: the ceiling of keep PSNR) and the rendered target (what a
perfect edit scores: the judge's own accuracy, the SSIM a correct edit has).

    python scripts/eval_edit.py --prior toy --out outputs/eval_edit --sheet outputs/eval_edit/sheet.png   # the matrix
    python scripts/eval_edit.py --prior toy --losses dds,cds --seeds 0                                   # the bars' losses
    python scripts/eval_edit.py --prior /tmp/tiny --judge none -n 4 --steps 5                             # plumbing only

Exit code 0 whether or not the bars are met (the numbers are the result); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from nerfedit.errors import UserError, exit_with
from nerfedit.image.io import PASTES

SUCCESS_BAR = 0.90
"""The issue's bar: the judge reads the target on ≥ 90 % of DDS's and of CDS's edits."""
KEEP_PSNR_BAR = 26.0
"""The issue's bar: median PSNR of the kept pixels (the background) ≥ 26 dB for DDS and CDS."""
PAIRS_SEED = 20250917
"""Seed of the held-out pairs: a stream of its own, not the training data's."""
LEGEND = (
    "success: the judge reads the target colour / shape / floor (by kind); still source: it reads the source word.",
    "keep PSNR (dB): source vs edit over the pixels the edit should keep: outside the object (colour), outside source and "
    "target objects (shape; the target's shadow moves too), the object and the sky (floor).",
    "SSIM(src, edit): structure preservation, whole image; no object-mask IoU (the judge has no segmentation, and a mask "
    "from the edit's own differences would not be honest). PSNR vs target: the edit against the rendered target scene "
    "(shape swaps' targets also move the floor plane, which sits at the object's bottom).",
    "Floor swaps' short prompts are their captions: each is edited once and counted under both prompt forms; s/edit "
    "counts the edits made.",
)
"""Lines under the table: what its columns measure."""


def parse_args(argv: Sequence[str] | None):
    """The options; edit-image's own options (`--steps`, `--lr`, …) default to None = edit-image's default."""
    from nerfedit.commandline import NerfeditArgumentParser, add_overwrite_option
    from nerfedit.eval.swaps import PROMPT_FORMS

    p = NerfeditArgumentParser(prog="eval_edit.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", default="toy", help="prior name or folder (default: toy)")
    p.add_argument("-n", "--num", type=int, default=32, help="held-out pairs, over all kinds (default: 32)")
    p.add_argument("--pairs-seed", type=int, default=PAIRS_SEED, help=f"seed of the held-out pairs (default: {PAIRS_SEED})")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the edits (default: 0,1,2)")
    p.add_argument("--losses", default="all", help="comma-separated losses, or 'all' = every loss of the catalogue (default: all)")
    p.add_argument("--prompts", default=",".join(PROMPT_FORMS), help="prompt forms: full (captions), short (what a user types) (default: full,short)")
    p.add_argument("--edit-region", choices=("none", "auto"), default="none", help="restrict each edit's gradient to its auto region, as edit-image --edit-region (default: none)")
    p.add_argument("--batch", type=int, default=16, help="edits optimised together (independent rows; default: 16)")
    over = p.add_argument_group("overrides of nerfedit edit-image's settings (unset: its defaults; set: labelled non-default)")
    over.add_argument("--steps", type=int, default=None)
    over.add_argument("--optimizer", choices=("sgd", "adam"), default=None)
    over.add_argument("--lr", type=float, default=None)
    over.add_argument("--lr-schedule", choices=("step", "constant", "cosine"), default=None)
    over.add_argument("--guidance-scale", type=float, default=None)
    over.add_argument("--t-min", type=int, default=None)
    over.add_argument("--t-max", type=int, default=None)
    over.add_argument("--grad-scale", type=float, default=None)
    over.add_argument("--patchnce-weight", type=float, default=None)
    over.add_argument("--paste", choices=PASTES, default=None)
    p.add_argument("--judge", default="default", help="'default' (the shipped judge), a checkpoint path, or 'none'")
    p.add_argument("--out", default=None, help="folder for eval_edit.md and results.json")
    p.add_argument("--sheet", default=None, help="write a contact sheet PNG here (first seed)")
    p.add_argument("--sheet-rows", type=int, default=12, help="rows of the contact sheet (default: 12)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite_option(p)
    args = p.parse_args(argv)
    if args.num <= 0 or args.batch <= 0 or (args.steps is not None and args.steps <= 0):
        p.error("--num, --batch and --steps must be positive")
    return args


def parse_lists(args) -> Dict[str, List]:
    """--losses, --seeds and --prompts as lists, checked against the catalogue and the prompt forms."""
    from nerfedit.eval.swaps import PROMPT_FORMS
    from nerfedit.losses import catalog

    def words(text: str) -> List[str]:
        return [w.strip() for w in text.split(",") if w.strip()]

    losses = list(catalog.LOSS_NAMES) if args.losses.strip() == "all" else words(args.losses)
    for name in losses:
        catalog.entry(name, "--losses")
    forms = words(args.prompts)
    if not forms or any(f not in PROMPT_FORMS for f in forms):
        raise UserError(f"--prompts {args.prompts!r}: use a comma-separated list of {', '.join(PROMPT_FORMS)}")
    try:
        seeds = [int(s) for s in words(args.seeds)]
    except ValueError:
        raise UserError(f"--seeds {args.seeds!r}: use comma-separated integers, e.g. 0,1,2") from None
    if not seeds or not losses:
        raise UserError("--seeds and --losses need at least one entry")
    return {"losses": losses, "seeds": seeds, "forms": forms}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, evaluate; a `UserError` is one line and exit code 2."""
    args = parse_args(argv)
    try:
        return evaluate(args)
    except UserError as error:
        exit_with(error, "eval_edit.py")
    return 2


def evaluate(args) -> int:
    """Edit every pair with every loss, seed and prompt form; score; print and write the results."""
    from tqdm.auto import tqdm

    from nerfedit.commandline import resolve_device
    from nerfedit.quiet import quiet_libraries
    from nerfedit.eval import edit_scores as scores
    from nerfedit.eval.edit_runs import edit_matrix_entry, rows_to_edit
    from nerfedit.eval.edit_settings import describe, edit_image_paste, edit_image_settings, overrides_from_args, settings_record
    from nerfedit.eval.judging import load_judge_option
    from nerfedit.eval.swaps import held_out_swaps
    from nerfedit.priors import load_prior

    lists = parse_lists(args)
    losses, seeds, forms = lists["losses"], lists["seeds"], lists["forms"]
    overrides = overrides_from_args(args)
    settings = {name: settings_record(name, overrides, args.prior) for name in losses}  # bad override values fail here, before loading
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)  # first: --sheet may be inside it
    if args.sheet:
        from nerfedit.image.io import check_output_path

        check_output_path(args.sheet, suffixes=(".png",), what="--sheet", overwrite=args.overwrite)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    device = resolve_device(args.device)
    prior = load_prior(args.prior, device=device)
    judge = load_judge_option(args.judge, device)
    losses = usable_losses(prior, losses, overrides, skip_unusable=args.losses.strip() == "all")
    settings = {name: settings[name] for name in losses}
    swaps = held_out_swaps(args.num, args.pairs_seed, prior.resolution)
    edit_options: Dict[str, object] = {}  # extra options of the edit call (one line each), passed to every edit
    if args.edit_region != "none":
        edit_options["region"] = args.edit_region

    counts = {kind: swaps.kinds.count(kind) for kind in dict.fromkeys(swaps.kinds)}
    print(f"{len(swaps)} held-out pairs (seed {args.pairs_seed}: {', '.join(f'{n} {k}' for k, n in counts.items())}), "
          f"prior {args.prior} ({prior.resolution} px), device {device}, edit seeds {seeds}, prompts {', '.join(forms)}")  # fmt: skip
    for name in losses:
        print(f"  {name}: {describe(settings[name])}")

    report: Dict[str, object] = {
        "pairs": len(swaps), "pairs_seed": args.pairs_seed, "kinds": swaps.kinds, "seeds": seeds, "prompt_forms": forms,
        "prior": args.prior, "overrides": overrides, "settings": settings, "edit_options": edit_options,
        "prompts": {form: dict(zip(("sources", "targets"), swaps.prompts(form))) for form in forms},
    }  # fmt: skip
    report["reference"] = reference_scores(prior, swaps, judge, device)

    per_run = sum(len(rows) for rows in rows_to_edit(swaps, forms).values())
    bar = tqdm(total=per_run * len(seeds) * len(losses), desc="edits", unit="edit", disable=args.quiet, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} edits [{elapsed}<{remaining}, {rate_fmt}]")  # fmt: skip
    per_edit: Dict[str, Dict[str, List[Dict[str, list]]]] = {name: {form: [] for form in forms} for name in losses}
    timing: Dict[str, Dict[str, float]] = {}
    sheet_images: Dict[str, torch.Tensor] = {}
    for name in losses:
        start, edits, skipped = time.perf_counter(), 0, 0
        for seed in seeds:
            config, loss_config = edit_image_settings(name, overrides, args.prior)
            config.seed = seed
            paste = edit_image_paste(name, overrides)
            runs = edit_matrix_entry(prior, swaps, loss_config, config, forms, paste=paste, batch=args.batch, on_step=bar.update, **edit_options)
            for form, run in runs.items():
                per_edit[name][form].append(scores.score_edits(swaps, run["images"], judge))
                edits += len(run["edited"])
                skipped += run["skipped"]
                if seed == seeds[0]:
                    sheet_images[f"{name} {form}"] = run["images"]
        timing[name] = {"seconds": time.perf_counter() - start, "edits": edits, "skipped_steps": skipped}
    bar.close()

    summary = {name: {form: scores.summarise(scores.pool(per_edit[name][form]), swaps.kinds * len(seeds)) for form in forms} for name in losses}
    table = results_table(summary, report["reference"], timing, forms)
    bars = scores.bar_check(summary, forms, SUCCESS_BAR, KEEP_PSNR_BAR) if judge is not None else []
    markdown = markdown_report(report, table, bars, timing)
    print()
    print(markdown)
    report.update(summary=summary, per_edit=per_edit, timing=timing, bars=bars)
    if args.out:
        out = Path(args.out)
        (out / "eval_edit.md").write_text(markdown + "\n")
        (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out / 'eval_edit.md'} and {out / 'results.json'}")
    if args.sheet:
        from nerfedit.eval.edit_sheet import swap_sheet

        swap_sheet(Path(args.sheet), swaps, sheet_images, judge, args.sheet_rows)
        print(f"wrote {args.sheet}")
    return 0


def usable_losses(prior, losses: List[str], overrides: List[str], skip_unusable: bool) -> List[str]:
    """The losses that can be built for `prior` (LMC-SDS needs a corrective trained for it). With `--losses all`
    the others are left out with a note; a loss named explicitly that cannot be built is an error."""
    from nerfedit.eval.edit_settings import edit_image_settings
    from nerfedit.losses import build_loss

    usable = []
    for name in losses:
        try:
            build_loss(edit_image_settings(name, overrides, prior.name)[1], prior)
            usable.append(name)
        except UserError as error:
            if not skip_unusable:
                raise
            print(f"left out {name}: {error}")
    if not usable:
        raise UserError("no loss of --losses can be used with this prior")
    return usable


@torch.no_grad()
def reference_scores(prior, swaps, judge, device) -> Dict[str, object]:
    """Summaries of two non-edits: the VAE's reconstruction of the source (the ceiling of keep PSNR) and
    the rendered target (a perfect edit: the judge's accuracy, the SSIM of a correct edit)."""
    from nerfedit.eval import edit_scores as scores

    recon = torch.cat([prior.decode_latents(prior.encode_images(swaps.images[i : i + 32].to(device))).cpu() for i in range(0, len(swaps), 32)])
    return {
        "vae_reconstruction": scores.summarise(scores.score_edits(swaps, recon, judge), swaps.kinds),
        "rendered_target": scores.summarise(scores.score_edits(swaps, swaps.target_images, judge), swaps.kinds),
    }


def results_table(summary, reference, timing, forms) -> str:
    """The Markdown table: reference rows first, then every loss × prompt form × kind."""
    from nerfedit.eval import edit_scores as scores

    rows = []
    for label, key in (("(VAE, no edit)", "vae_reconstruction"), ("(rendered target)", "rendered_target")):
        rows += [scores.table_row(label, "-", kind, entry, None) for kind, entry in reference[key].items()]
    for name, by_form in summary.items():
        per_edit = timing[name]["seconds"] / max(1, timing[name]["edits"])
        for form in forms:
            rows += [scores.table_row(name, form, kind, entry, per_edit) for kind, entry in by_form[form].items()]
    return scores.markdown_table(rows)


def markdown_report(report, table: str, bars: List[str], timing) -> str:
    """The whole Markdown output: what was run, with which settings, the table, the bars."""
    lines = [
        f"# eval_edit: {report['pairs']} held-out pairs × seeds {report['seeds']} × prompts {', '.join(report['prompt_forms'])}",
        "",
        f"prior `{report['prior']}`; settings: nerfedit edit-image's defaults"
        + (f", overridden by `{' '.join(report['overrides'])}`" if report["overrides"] else "") + ":",
        "",
    ]
    from nerfedit.eval.edit_settings import describe

    lines += [f"- {name}: {describe(record)}" for name, record in report["settings"].items()]
    lines += ["", table, "", *LEGEND, ""]
    lines += [f"- {name}: {t['edits']} edits in {t['seconds']:.0f} s, {t['skipped_steps']} steps skipped (NaN/Inf)" for name, t in timing.items()]
    if bars:
        lines += ["", "Bars (all kinds pooled):", ""] + [f"- {line}" for line in bars]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
