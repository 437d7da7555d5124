"""Text-to-image latent diffusion priors: Stable Diffusion through diffusers, and our embedded `toy` prior."""

from nerfedit.priors.loader import PRIOR_SHORTCUTS, PriorUnavailable, load_prior, resolve_prior
from nerfedit.priors.prior import DiffusionPrior

__all__ = ["DiffusionPrior", "PRIOR_SHORTCUTS", "PriorUnavailable", "load_prior", "resolve_prior"]
