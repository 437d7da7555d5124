"""Scoring edits and generations: what `scripts/eval_*.py`, `scripts/run_*_eval.py` and the training scripts share.

    psnr       PSNR of whole images, and outside an object mask (per image, or a summary over views)
    masks      growing object masks by a few pixels
    judging    what the judge reads on images, and how often that matches the prompt
    sheets     contact sheets: rows of image cells with labels, captions and pass/fail bars
    structure  structure preservation of an edit: SSIM between source and edit
    swaps          the 2D benchmark's held-out pairs: colour, shape and floor swaps, with rendered targets and prompt forms
    edit_settings  the settings `nerfedit edit-image` edits with, read from its own parser (defaults, overrides)
    edit_runs      the 2D benchmark's edits, batched, per loss, seed and prompt form
    edit_scores    their scores (judge success, kept-pixel PSNR, SSIM, PSNR vs the rendered target) and table
    edit_sheet     their contact sheet
    orbit      renders of trained NeRF runs (edited or generated) from orbit cameras, to be scored
    nerf_edit  one scored NeRF edit: recipe, bars, held-out cameras, scoring (scripts/run_nerf_edit_eval.py)
    nerf_sweep that evaluation over N fresh world scenes, in parallel and resumable (--sweep N)
    consistency  multi-view consistency: judge agreement between neighbouring views, depth-warp PSNR

Only `orbit` imports nerfstudio, inside its functions; the other modules score plain image tensors.
"""
