"""What a loss returns, and how its gradient gets into the latents: `LossOutput`, gradient injection, the NaN/Inf
guard, composition of losses, and the one counter of skipped steps every caller uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

if TYPE_CHECKING:  # base.py imports this module: names for annotations only
    from nerfedit.losses.base import DistillationConfig, DistillationLoss


@dataclass
class LossOutput:
    """What a loss returns for one step."""

    loss: Tensor
    """Scalar surrogate; its gradient w.r.t. the latents is `grad`. Zero (with a zero gradient) when skipped."""
    grad: Tensor
    """The injected gradient, detached, shaped like the latents."""
    t: Tensor
    """Timesteps used, one per row."""
    terms: Dict[str, float] = field(default_factory=dict)
    """Diagnostics for logs and progress bars (e.g. {"dds": …, "patchnce": …})."""
    skipped: bool = False
    """True when the gradient had NaN/Inf: nothing is applied, the caller counts and reports it."""

    @property
    def grad_norm(self) -> float:
        return float(self.grad.norm())


# ---- gradient injection ------------------------------------------------------------------------
class _InjectGradient(torch.autograd.Function):
    """Forward: the given value. Backward: the given gradient (times the incoming scale)."""

    @staticmethod
    def forward(ctx, z: Tensor, grad: Tensor, value: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(grad)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None, None


def inject_gradient(z: Tensor, grad: Tensor, value: Union[Tensor, float]) -> Tensor:
    """A scalar whose value is `value` and whose gradient w.r.t. `z` is exactly `grad`.

    Replaces the reference code's surrogates (`Σ z·δ`, threestudio's `½‖z − (z − δ).detach()‖²`): those give
    δ only up to rounding and a value that means nothing (or NaN when z has NaN); this gives both exactly.
    """
    value = torch.as_tensor(value, dtype=torch.float32, device=z.device).reshape(())
    return _InjectGradient.apply(z, grad.detach().to(z.dtype), value)


def finish(
    z: Tensor,
    grad: Tensor,
    t: Tensor,
    terms: Optional[Dict[str, float]] = None,
    *,
    grad_scale: float = 1.0,
    value: Optional[Tensor] = None,
    name: str = "loss",
) -> LossOutput:
    """The step's `LossOutput` from the method's gradient g = w(t)·δ: inject grad_scale·g, or skip on NaN/Inf.

    The value (progress bars) is mean(g²) unless given; `terms[name]` repeats it, `terms["t"]` is the mean t.
    """
    grad = grad.detach()
    if not bool(torch.isfinite(grad).all()):
        return skipped_output(z, t, terms)
    value = (grad.float() ** 2).mean() if value is None else value.detach().float()
    terms = {**(terms or {}), name: float(value), "t": float(t.float().mean())}
    applied = grad * grad_scale
    return LossOutput(loss=inject_gradient(z, applied, value), grad=applied, t=t, terms=terms)


def restrict_to_region(z: Tensor, out: LossOutput, region: Optional[Tensor]) -> LossOutput:
    """The output with its gradient multiplied by the edit region: g ↦ m ⊙ g, m ∈ {0, 1} at the latent's resolution.

    `region` [B, 1, h, w] or [B, h, w] (1 = editable) broadcasts over the latent's channels. The gradient is then
    exactly zero outside the region and unchanged inside; the value (progress bars) stays the method's. Every loss
    goes through here (`ScoreDistillationLoss.__call__`); `None` returns `out` itself (no region: bit-identical).
    A skipped step stays skipped (its gradient is zero already).
    """
    if region is None or out.skipped:
        return out
    mask = region.to(device=z.device, dtype=out.grad.dtype)
    if mask.dim() == 3:
        mask = mask[:, None]
    if mask.shape[0] != z.shape[0] or mask.shape[-2:] != z.shape[-2:]:
        raise ValueError(f"edit region {tuple(region.shape)} does not match latents {tuple(z.shape)}")
    grad = out.grad * mask
    return LossOutput(loss=inject_gradient(z, grad, out.loss.detach()), grad=grad, t=out.t, terms=dict(out.terms))


def skipped_output(z: Tensor, t: Tensor, terms: Optional[Dict[str, float]] = None) -> LossOutput:
    """The NaN/Inf guard's answer: a zero loss with a zero gradient, flagged `skipped` for the caller to count."""
    zero = torch.zeros_like(z, dtype=torch.float32).detach()
    loss = inject_gradient(z, zero, 0.0)
    return LossOutput(loss=loss, grad=zero, t=t, terms={**(terms or {}), "skipped": 1.0}, skipped=True)


# ---- composition -------------------------------------------------------------------------------
def weighted_sum(parts: Sequence[Tuple[float, str, LossOutput]]) -> LossOutput:
    """Σ λ_i·out_i for (λ_i, name_i, out_i): losses, gradients and values add; one skipped part skips the step.

    Terms: each part's value under its name ("dds", "patchnce"), its other diagnostics prefixed with the
    name ("patchnce/…"), and the first part's mean t as "t".
    """
    first = parts[0][2]
    terms: Dict[str, float] = {}
    for weight, name, out in parts:
        terms.update({f"{name}/{k}": v for k, v in out.terms.items() if k not in (name, "t")})
    if any(out.skipped for _, _, out in parts):
        zero = torch.zeros_like(first.grad)
        terms["skipped"] = 1.0
        loss = sum(0.0 * out.loss for _, _, out in parts)  # every part's (zero) gradient, value 0
        return LossOutput(loss=loss, grad=zero, t=first.t, terms=terms, skipped=True)
    loss = sum(weight * out.loss for weight, _, out in parts)
    grad = sum(weight * out.grad for weight, _, out in parts)
    terms.update({name: float(out.loss.detach()) for _, name, out in parts})
    terms["t"] = float(first.t.float().mean())
    return LossOutput(loss=loss, grad=grad, t=first.t, terms=terms)


class WeightedSum:
    """Σ λ_i·L_i of independent losses, each called with the same arguments (and the same generator, in order).

    E.g. `WeightedSum([(1.0, "sds", sds), (0.5, "nfsd", nfsd)])`. CDS shares one DDS pass with its PatchNCE
    term, so it combines its two outputs with `weighted_sum` directly (see `cds.py`).
    """

    def __init__(self, parts: Sequence[Tuple[float, str, "DistillationLoss"]], config: Optional["DistillationConfig"] = None):
        if not parts:
            raise ValueError("WeightedSum needs at least one loss")
        self.parts = list(parts)
        self.config = config or self.parts[0][2].config

    def __call__(self, z: Tensor, **kwargs) -> LossOutput:
        return weighted_sum([(weight, name, loss(z, **kwargs)) for weight, name, loss in self.parts])


@dataclass
class SkippedSteps:
    """Steps whose gradient had NaN/Inf and were skipped (nothing applied): counted here, by every loop that
    calls a loss (2D edits, NeRF edits, text-to-3D), and reported."""

    steps: List[int] = field(default_factory=list)
    """The skipped steps, in order."""

    def record(self, step: int, out: LossOutput) -> bool:
        """Count `step` if `out` was skipped; returns whether it was."""
        if out.skipped:
            self.steps.append(step)
        return out.skipped

    @property
    def count(self) -> int:
        return len(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def summary(self, total: Optional[int] = None) -> str:
        """"3 of 200 steps skipped for NaN/Inf gradients (first at step 17)", or "" when none was."""
        if not self.steps:
            return ""
        of = f" of {total}" if total is not None else ""
        return f"{self.count}{of} steps skipped for NaN/Inf gradients (first at step {self.steps[0]})"
