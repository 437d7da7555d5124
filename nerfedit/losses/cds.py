"""Contrastive Denoising Score (Nam, Kwon, Park, Ye, CVPR 2024):  CDS = DDS + λ·PatchNCE.

    ∇_z L_CDS = ∇_z L_DDS + λ' ∇_z ℓ_con(z, ẑ),   λ' = λ · (h·w)/64²      CDS Eqs. 4–6, λ = 3.0 (w_cut), w_dds = 1

One step, as the official code (`pipeline_cds.py`):
  pass 1  no grad, ONE UNet call of 4B rows (dds.py) → the DDS gradient, and — captured on the way — the
          decoder self-attention features of the text-conditioned SOURCE rows (y_src on ẑ_t);
  pass 2  with grad, one UNet call of B rows: y_tgt on z_t (same ε and t) → differentiable target features.
PatchNCE between them (patchnce.py) back-propagates through pass 2 to z only: ẑ is never differentiated.
The official pass 2 runs both CFG halves and keeps the conditional row; we run only that row.
CFG (DDS form) s = 7.5, t ∈ [50, 949), w = 1. The DDS part carries `grad_scale` (2000/64², the code's
`2000 · Σ(z·δ)/(h·w)` at 64² latents); the code adds PatchNCE with weight λ (`cutloss * w_cut`). Our DDS scale does
not follow the code's 1/(h·w), so PatchNCE is weighed λ' = λ·(h·w)/64²: the step is then the official one × (h·w)/64²
at every latent size, the paper's balance (`catalog.CDS_REFERENCE_LATENT_PIXELS`); at 64² λ' = λ.
"""

from __future__ import annotations

from nerfedit.losses.base import StepInputs
from nerfedit.losses.catalog import CDS_REFERENCE_LATENT_PIXELS
from nerfedit.losses.dds import DeltaDenoisingScore
from nerfedit.losses.output import LossOutput, finish, weighted_sum
from nerfedit.losses.patchnce import PatchNCELoss
from nerfedit.priors.prior import DiffusionPrior

COND_SRC_ROWS = 2
"""Index of the y_src block among DDS's four B-row blocks (`dds.dds_batch`): the source features CDS keeps."""


class ContrastiveDenoisingScore(DeltaDenoisingScore):
    """CDS: `weighted_sum([(1, dds), (λ', patchnce)])` over one shared DDS pass (shared t, ε and source features)."""

    name = "cds"

    def __init__(self, config, prior: DiffusionPrior):
        super().__init__(config, prior)
        self.patchnce = PatchNCELoss(self.config, prior)

    def output(self, inputs: StepInputs) -> LossOutput:
        """∇L_DDS + λ∇ℓ_con (CDS Eqs. 4–6): pass 1 gives the DDS gradient and the source features, pass 2 PatchNCE's."""
        with self.prior.capture_self_attention() as store:  # pass 1
            grad, _ = self.gradient(inputs)
            source = {name: f.chunk(4)[COND_SRC_ROWS].detach() for name, f in store.features.items()}
        dds = finish(inputs.z, grad, inputs.t, grad_scale=self.config.grad_scale, name="dds")
        nce = self.patchnce.from_features(inputs.z, inputs.t, inputs.eps, inputs.prompts, source, inputs.generator)  # pass 2
        return weighted_sum([(1.0, "dds", dds), (self.patchnce_weight(inputs.z), "patchnce", nce)])

    def patchnce_weight(self, z) -> float:
        """λ' = λ · (h·w)/64²: the CDS code's DDS : PatchNCE balance at this latent size (module docstring)."""
        height, width = z.shape[-2:]
        return self.config.patchnce_weight * height * width / CDS_REFERENCE_LATENT_PIXELS
