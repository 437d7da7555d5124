"""The one list of losses: every name, paper default and per-use default in nerfedit is read from here.

Adding a loss = one module in `nerfedit/losses/` (a `ScoreDistillationLoss` subclass) + one `LossEntry` below.
Every choice list (the `nerfedit` commands, `--pipeline.loss.name` of every ns-train method, the viewer's
dropdown), every validation and every test parametrisation reads `LOSSES`.

A prior may set its own default for a loss's setting in its folder's `loss_defaults.json` (read by
`priors.loader.prior_loss_defaults`, applied by `DistillationConfig.with_defaults` before the paper's): the toy
prior's CFG for DDS/CDS is 2.5, not the papers' 7.5 (`TOY_LOSS_DEFAULTS`).

Torch-free on purpose: `nerfedit --help`, tyro's `ns-train … --help` and input validation read it without
importing torch; the implementing class is named by its import path and loaded by `build_loss`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Literal, Mapping, Optional, Tuple

from nerfedit.errors import UserError

DDS_CODE_GRAD_SCALE = 2000 / (64 * 64)
"""0.48828125. The DDS notebook and the CDS code back-propagate `2000 · Σ(z·δ) / (h·w)` and step SGD with lr 0.1;
at SD's 64×64 latent (512² images) that is δ × 2000/4096 per element. We fold that CONSTANT into DDS/CDS/SDS's
default `grad_scale`, not its 1/(h·w): at 64² latents the step is the official one; at other sizes our DDS
gradient is the official one × (h·w)/64² (1/16 of it at the toy prior's 16² latents, 1/4 at 256-px renders), so a
learning rate means the same per-element step at every size. CDS's PatchNCE term is weighed by the same factor
(`CDS_REFERENCE_LATENT_PIXELS`), so that DDS : PatchNCE is the official code's balance at every size."""

TOY_LOSS_DEFAULTS = Path(__file__).resolve().parent.parent / "assets" / "toy" / "loss_defaults.json"
"""The toy prior's own defaults of some losses (a prior folder's `loss_defaults.json` fills a setting before the
paper's does: `DistillationConfig.with_defaults`); read here too, for `--help`."""

CDS_REFERENCE_LATENT_PIXELS = 64 * 64
"""h·w of the latent at which the CDS code's λ = 3 was set (SD, 512² images). CDS weighs PatchNCE by
λ · (h·w) / 4096: with DDS's size-independent `DDS_CODE_GRAD_SCALE` our CDS step is then the official code's step
× (h·w)/4096 at EVERY latent size — the same direction, DDS and PatchNCE in the paper's proportion. (With λ alone,
PatchNCE weighed 16× more against DDS at the toy prior's 16² latents than in the official code.)"""

NFSD_NEGATIVE_PROMPT = (
    "unrealistic, blurry, low quality, out of focus, ugly, low contrast, dull, dark, low-resolution, gloomy"
)
"""NFSD's negative prompt for δ_D (Katzir et al. 2023; the same string as SDS-Bridge's NFSD baseline code)."""


@dataclass(frozen=True)
class NerfEditDefaults:
    """How `ns-train nerfedit` edits a field with this loss, unless told otherwise."""

    edit_lr: float
    """Learning rate of the edited parameters (Adam, restarted when editing starts)."""
    appearance_only: bool
    """Train the colour head only. Losses without a source reference (the SDS family) would reshape the scene."""


@dataclass(frozen=True)
class LossEntry:
    """One loss of the catalogue."""

    name: str
    """Its name everywhere: `--loss NAME`, `--pipeline.loss.name NAME`."""
    title: str
    """Short human name (errors, help)."""
    summary: str
    """One line for `--help`."""
    implementation: str
    """`module:Class` of its `ScoreDistillationLoss`."""
    paper_defaults: Mapping[str, object]
    """`DistillationConfig` fields the paper / official code fixes (the 2D defaults)."""
    nerf: NerfEditDefaults
    """Its defaults for NeRF editing."""
    needs_source: bool = False
    """Contrasts against a source image: needs `z_source` and a source prompt (DDS, CDS)."""
    needs_corrective: bool = False
    """Needs a learned corrective b̂ψ for the prior (LMC-SDS)."""
    text_to_3d: Optional[Mapping[str, object]] = None
    """Text-to-3D overrides of `paper_defaults` (None: it cannot generate from text alone)."""

    @property
    def generates(self) -> bool:
        """Whether it can generate from nothing (text-to-image, text-to-3D)."""
        return self.text_to_3d is not None


_DDS = dict(guidance_scale=7.5, t_min=50, t_max=949, weighting="uniform", grad_scale=DDS_CODE_GRAD_SCALE)
"""DDS notebook / CDS code: CFG 7.5, t = randint(50, 950 − 1) i.e. t ∈ [50, 949), w = 1, ×2000/64² (above)."""
_SOURCE_NERF = NerfEditDefaults(edit_lr=0.01, appearance_only=True)
"""DDS/CDS: Adam lr 0.01 (the CDS paper's NeRF edits), on the colour head only. The CDS paper trains the whole field;
measured on the toy prior, a whole-field edit at lr 0.01 turned yellow_sphere's sphere black and its grass saturated
(purple 0 %, sphere 0 %, 18.2 dB outside) where colours-only kept both scenes' shapes — shape edits need
--pipeline.edit-appearance-only False."""
_SDS_FAMILY_NERF = NerfEditDefaults(edit_lr=0.005, appearance_only=True)
"""No source reference: edit colours only, at half CDS's rate (a whole-field SDS edit reshapes the scene)."""

LOSSES: Tuple[LossEntry, ...] = (
    LossEntry(
        name="sds",
        title="SDS",
        summary="Score Distillation Sampling (DreamFusion): pull the image towards the target prompt alone; "
        "no source term, so the whole image drifts (the baseline the others improve on)",
        implementation="nerfedit.losses.sds:ScoreDistillation",
        # DreamFusion (Poole et al. 2022): ω = 100, w(t) = 1 − ᾱ_t, t ∈ [20, 980) (threestudio's range).
        paper_defaults=dict(guidance_scale=100.0, t_min=20, t_max=980, weighting="sds", grad_scale=DDS_CODE_GRAD_SCALE),
        nerf=_SDS_FAMILY_NERF,
        # threestudio / generfacto back-propagate w(t)·(ε̂ − ε) unscaled: ×2000/64² is a step for SGD on a latent.
        text_to_3d=dict(grad_scale=1.0),
    ),
    LossEntry(
        name="dds",
        title="DDS",
        summary="Delta Denoising Score (Hertz et al. 2023): SDS(target) - SDS(source) with shared noise and t; "
        "changes only what the two prompts disagree on",
        implementation="nerfedit.losses.dds:DeltaDenoisingScore",
        paper_defaults=_DDS,
        nerf=_SOURCE_NERF,
        needs_source=True,
    ),
    LossEntry(
        name="cds",
        title="CDS",
        summary="Contrastive Denoising Score (Nam et al. 2024): DDS + PatchNCE on the UNet decoder's "
        "self-attention features, keeping the input's structure",
        implementation="nerfedit.losses.cds:ContrastiveDenoisingScore",
        # CDS code: DDS's settings + PatchNCE with weight 3.0 (PatchNCE itself is not ×2000).
        paper_defaults={**_DDS, "patchnce_weight": 3.0},
        nerf=_SOURCE_NERF,
        needs_source=True,
    ),
    LossEntry(
        name="lmc",
        title="LMC-SDS",
        summary="LMC-SDS (Alldieck et al. 2024): SDS with a learned manifold corrective, less over-saturated "
        "and over-smoothed (needs a corrective for the prior; toy ships one)",
        implementation="nerfedit.losses.lmc:LearnedManifoldCorrective",
        # LMC-SDS paper: ω = 15 for editing (8 for synthesis), w(t) = 1, t ~ U(0.02, 0.98), Adam.
        paper_defaults=dict(guidance_scale=15.0, t_min=20, t_max=980, weighting="uniform", grad_scale=1.0),
        nerf=_SDS_FAMILY_NERF,
        needs_corrective=True,
        # Sec. 5.3, Figs. 8, 9, 14: its DreamFusion comparisons use ω = 20, and DreamFusion's w(t) = 1 − ᾱ_t
        # ("The only exceptions are the DreamFusion experiments, where we use the original hyper-parameters").
        text_to_3d=dict(guidance_scale=20.0, weighting="sds"),
    ),
    LossEntry(
        name="bridge",
        title="SDS-Bridge",
        summary="SDS-Bridge (McAllister et al. 2024): SDS first, then from the switch step "
        "eps(prompt + quality words) - eps(prompt + degradation words)",
        implementation="nerfedit.losses.bridge:SDSBridge",
        # SDS-Bridge official 2D code: CFG 40 in both stages, w = 1 − ᾱ, t in 0.02–0.98 of T, AdamW.
        paper_defaults=dict(guidance_scale=40.0, t_min=20, t_max=980, weighting="sds", grad_scale=1.0),
        nerf=_SDS_FAMILY_NERF,
        # Its 3D runs (threestudio configs): CFG 100 (threestudio's form, ours + 1: negligible).
        text_to_3d=dict(guidance_scale=100.0),
    ),
    LossEntry(
        name="nfsd",
        title="NFSD",
        summary="Noise-Free Score Distillation (Katzir et al. 2024): SDS without the noise term (a baseline)",
        implementation="nerfedit.losses.nfsd:NoiseFreeScoreDistillation",
        # NFSD: a nominal CFG 7.5, w = 1 − ᾱ and the t range of threestudio / SDS-Bridge's baseline.
        paper_defaults=dict(
            guidance_scale=7.5, t_min=20, t_max=980, weighting="sds", grad_scale=1.0, negative_prompt=NFSD_NEGATIVE_PROMPT
        ),
        nerf=_SDS_FAMILY_NERF,
        text_to_3d=dict(),
    ),
)

CATALOG: Dict[str, LossEntry] = {entry.name: entry for entry in LOSSES}
LOSS_NAMES: Tuple[str, ...] = tuple(CATALOG)
"""Every loss, in the order the commands list them."""
GENERATING_LOSS_NAMES: Tuple[str, ...] = tuple(entry.name for entry in LOSSES if entry.generates)
"""The losses that generate from text alone (text-to-image, text-to-3D)."""
SOURCE_LOSS_NAMES: Tuple[str, ...] = tuple(entry.name for entry in LOSSES if entry.needs_source)
"""The losses that need a source image and prompt."""

LossName = Literal[LOSS_NAMES]  # type: ignore[valid-type]  # built from the catalogue: tyro and --help list it
GeneratingLossName = Literal[GENERATING_LOSS_NAMES]  # type: ignore[valid-type]
DEFAULT_EDIT_LOSS = "dds"
"""`nerfedit edit-image`'s loss (DDS: the 2D editor of its paper)."""
DEFAULT_NERF_LOSS = "dds"
"""`ns-train nerfedit`'s loss. DDS: on the bundled scenes it keeps the shape where CDS loses a view (README,
"NeRF method table"); CDS stays one flag away (`--pipeline.loss.name cds`)."""
DEFAULT_GENERATE_IMAGE_LOSS = "sds"
"""`nerfedit generate-image`'s loss."""
DEFAULT_TEXT_TO_3D_LOSS = "lmc"
"""`ns-train nerfedit-generate`'s loss."""


def entry(name: str, option: str = "--loss", names: Tuple[str, ...] = LOSS_NAMES) -> LossEntry:
    """The catalogue entry of `name`, among `names`; a one-line `UserError` naming `option` otherwise."""
    if name not in CATALOG or name not in names:
        raise UserError(f"unknown loss '{name}': use one of {', '.join(names)} ({option})")
    return CATALOG[name]


def generating_entry(name: str, option: str = "--loss", what: str = "") -> LossEntry:
    """`entry(name)` for generation from text: a loss that needs a source image gets its own one-line error."""
    if name in CATALOG and not CATALOG[name].generates:
        raise UserError(
            f"loss '{name}' contrasts an edit against a source image and cannot generate from text; use one of "
            f"{', '.join(GENERATING_LOSS_NAMES)} ({option}){what}"
        )
    return entry(name, option, GENERATING_LOSS_NAMES)


def check_source_prompt(name: str, source: Optional[str], option: str) -> None:
    """A loss that contrasts against the source (`needs_source`) needs a source prompt that says something:
    with '' CDS/DDS would contrast against the unconditional prediction and silently do another edit."""
    if name in CATALOG and CATALOG[name].needs_source and not (source or "").strip():
        raise UserError(
            f"loss '{name}' needs {option}, a description of the input as it is (e.g. \"a red cube on a wooden "
            f"floor\"){'; it is empty' if source is not None else ''}"
        )


def defaults_text(key: str, names: Tuple[str, ...] = LOSS_NAMES, which: str = "paper") -> str:
    """The defaults of field `key` over `names`, grouped: "sds 100; dds/cds/nfsd 7.5; lmc 15; bridge 40", followed by
    the toy prior's own where it has one ("; on the toy prior dds/cds 2.5", `TOY_LOSS_DEFAULTS`).

    `which`: "paper" (2D) or "text_to_3d" (paper defaults with the text-to-3D overrides)."""
    values, toy = {}, {}
    toy_defaults = read_loss_defaults(TOY_LOSS_DEFAULTS)
    for name in names:
        item = CATALOG[name]
        defaults = dict(item.paper_defaults)
        if which == "text_to_3d":
            defaults.update(item.text_to_3d or {})
        if key in defaults:
            values[name] = defaults[key]
        if which == "paper" and key in toy_defaults.get(name, {}):
            toy[name] = toy_defaults[name][key]
    return grouped_text(values) + (f"; on the toy prior {grouped_text(toy)}" if toy else "")


def read_loss_defaults(path: Path) -> Dict[str, Dict[str, object]]:
    """A prior folder's `loss_defaults.json` as {loss: {setting: value}} ({} without the file; keys starting with "_"
    are comments). Not JSON, or a key that is not a loss of the catalogue mapping to an object: a one-line `UserError`.
    Whether each setting is a `DistillationConfig` field is checked where torch may be imported
    (`priors.loader.prior_loss_defaults`)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not readable as JSON ({error})") from None
    defaults = {key: value for key, value in data.items() if not key.startswith("_")}
    for loss, values in defaults.items():
        if loss not in CATALOG or not isinstance(values, dict):
            raise UserError(f"{path}: '{loss}' must name a loss ({', '.join(CATALOG)}) and map its settings to values")
    return defaults


def grouped_text(values: Mapping[str, object]) -> str:
    """{loss: value} as "sds 100; dds/cds/nfsd 7.5; …": losses with the same value share one entry."""
    groups: Dict[str, list] = {}
    for name, value in values.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        groups.setdefault(text, []).append(name)
    return "; ".join(f"{'/'.join(group)} {value}" for value, group in groups.items())


def loss_list_help(names: Tuple[str, ...], default: str, width: int = 100) -> str:
    """The "losses:" block of a command's `--help`: one wrapped line per loss, the default marked."""
    import textwrap

    pad = max(len(n) for n in names)
    lines = []
    for name in names:
        text = CATALOG[name].summary + (" [default]" if name == default else "")
        lines.append(textwrap.fill(text, width, initial_indent=f"  {name.ljust(pad)}  ", subsequent_indent=" " * (pad + 4)))
    return "losses:\n" + "\n".join(lines)


__all__ = [
    "CATALOG",
    "CDS_REFERENCE_LATENT_PIXELS",
    "DDS_CODE_GRAD_SCALE",
    "GENERATING_LOSS_NAMES",
    "LOSSES",
    "LOSS_NAMES",
    "NFSD_NEGATIVE_PROMPT",
    "SOURCE_LOSS_NAMES",
    "GeneratingLossName",
    "LossEntry",
    "LossName",
    "NerfEditDefaults",
    "defaults_text",
    "entry",
    "generating_entry",
    "grouped_text",
    "loss_list_help",
]
