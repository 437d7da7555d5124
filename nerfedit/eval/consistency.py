"""Multi-view consistency of renders: does an edit look like one 3D object from neighbouring views?

Two measures, both on held-out views sorted by azimuth around the object:

(a) judge agreement — the share of neighbouring view pairs (i, j) on which the judge reads the same colour:
        agreement = (1/|P|) Σ_{(i,j) ∈ P} [colour_i = colour_j],     P = cyclic neighbours in azimuth.

(b) depth-warp PSNR — view B warped into view A through A's depth, compared with A.
    Pinhole cameras in the OpenGL convention (nerfstudio's and the world's): c2w = [R | t], the camera looks
    down −z, pixel (v, u) looks through the image point (u + ½, v + ½), focal f and centre c in pixels. Pixel
    (v, u) of A with z-depth z_A (distance along the optical axis) sees the world point
        d(u, v) = ((u + ½ − c)/f, −(v + ½ − c)/f, −1),      X = R_A · z_A d(u, v) + t_A.
    In B it lies at Y = R_Bᵀ (X − t_B), at z-depth z_AB = −Y_z, on pixel
        u' = c + f Y_x / z_AB − ½,      v' = c − f Y_y / z_AB − ½.
    The warp is Î_A(v, u) = I_B(v', u') (bilinear). A pixel counts — it is visible in both views — when
        z_AB > 0,   (u', v') lies inside B,   |z_B(v', u') − z_AB| ≤ τ · z_AB    (τ = `DEPTH_TOLERANCE`)
    where z_B(v', u') is B's own depth, sampled bilinearly there: a point hidden in B, or a pixel straddling a
    silhouette (where bilinear depth mixes near and far), fails the test. The score is
        PSNR(A, B) = −10 log10( Σ_visible |I_A − Î_A|² / (3 · #visible) ).
    For a NeRF, z comes from the run's rendered depth (nerfacto's median ray distance d, so z = d / |d(u, v)|
    in the world frame after undoing the dataparser's scale). A field whose colours agree between views warps
    well; an edit painted differently per view (the "Janus" failure of 2D priors) warps worse than the source
    field, whose number is reported beside it as the reference: only the change means something, since
    resampling and the field's own blur cost a few dB even for a perfect scene.

Held-out pairs (`partner_cameras`): each held-out camera gets a partner at the same elevation and distance,
`PARTNER_AZIMUTH_DEG` = 10° further round. Why this design: 10° at the world's 3.5-unit orbit moves the camera
~0.6 units, enough parallax that wrong depth or view-dependent paint shows, yet small enough that nearly every
pixel is visible in both views (little disocclusion), so the warp scores most of the image, object included; a
pure azimuth step keeps the pair on one circle, so the only change is the one the edit must be consistent
under. The primary cameras stay the ones the scoring always used, so the bars' numbers stay comparable.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nerfedit.eval.psnr import to_db

PARTNER_AZIMUTH_DEG = 10.0
"""Azimuth step from a held-out camera to its partner (see the module docstring)."""
DEPTH_TOLERANCE = 0.03
"""τ: relative z-depth disagreement above which a warped pixel counts as hidden in the other view."""


def partner_cameras(cameras: Sequence, step_deg: float = PARTNER_AZIMUTH_DEG) -> list:
    """One `OrbitCamera` per camera: same elevation, distance and focal, azimuth + `step_deg`."""
    from dataclasses import replace

    return [replace(camera, azimuth_deg=(camera.azimuth_deg + step_deg) % 360.0) for camera in cameras]


def neighbour_pairs(azimuths_deg: Sequence[float]) -> List[Tuple[int, int]]:
    """Index pairs of cyclic neighbours once the views are sorted by azimuth (n views → n pairs; 2 → 1)."""
    order = [int(i) for i in np.argsort(np.asarray(azimuths_deg, dtype=np.float64) % 360.0, kind="stable")]
    if len(order) < 2:
        return []
    if len(order) == 2:
        return [(order[0], order[1])]
    return [(order[k], order[(k + 1) % len(order)]) for k in range(len(order))]


def read_agreement(words: Sequence[str], pairs: Sequence[Tuple[int, int]]) -> float:
    """Share of `pairs` (i, j) with words[i] == words[j] (measure (a)); nan without pairs."""
    if not pairs:
        return float("nan")
    return float(np.mean([words[i] == words[j] for i, j in pairs]))


def pixel_directions(size: int, focal_px: float) -> Tensor:
    """d(u, v) of the module docstring for a square image: camera-space directions [H, W, 3] with z = −1."""
    v, u = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    c = size / 2.0
    return torch.stack([(u + 0.5 - c) / focal_px, -(v + 0.5 - c) / focal_px, -torch.ones_like(u)], dim=-1)


def z_depth_from_ray_distance(distance: Tensor, focal_px: float) -> Tensor:
    """Ray distance [..., H, W] (nerfacto's "depth", unit directions) → z-depth: z = d / |d(u, v)|."""
    size = distance.shape[-1]
    return distance / pixel_directions(size, focal_px).norm(dim=-1).to(distance)


def warp_into(image_b: Tensor, depth_a: Tensor, depth_b: Tensor, c2w_a, c2w_b, focal_px: float,
              tolerance: float = DEPTH_TOLERANCE) -> Tuple[Tensor, Tensor]:
    """View B's image [3, H, W] warped into view A through A's z-depth [H, W], and the mask [H, W] of pixels
    visible in both views (module docstring). `c2w_*` are 4×4 (or 3×4) camera-to-world matrices."""
    size = depth_a.shape[-1]
    c2w_a = torch.as_tensor(np.asarray(c2w_a), dtype=torch.float64)[:3]
    c2w_b = torch.as_tensor(np.asarray(c2w_b), dtype=torch.float64)[:3]
    finite = torch.isfinite(depth_a) & (depth_a > 0)
    z_a = torch.where(finite, depth_a.double(), torch.ones_like(depth_a, dtype=torch.float64))
    points = (pixel_directions(size, focal_px) * z_a[..., None]) @ c2w_a[:, :3].T + c2w_a[:, 3]  # X, world
    local = (points - c2w_b[:, 3]) @ c2w_b[:, :3]  # Y = R_Bᵀ (X − t_B), as rows
    z_ab = -local[..., 2]
    ahead = z_ab > 1e-6
    safe_z = torch.where(ahead, z_ab, torch.ones_like(z_ab))
    c = size / 2.0
    u = c + focal_px * local[..., 0] / safe_z  # continuous image coordinates (pixel centres at k + ½)
    v = c - focal_px * local[..., 1] / safe_z
    grid = torch.stack([2 * u / size - 1, 2 * v / size - 1], dim=-1)[None].float()  # align_corners=False frame
    inside = (grid[0].abs() <= 1).all(dim=-1)
    warped = F.grid_sample(image_b[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    depth_b_finite = torch.where(torch.isfinite(depth_b), depth_b.float(), torch.full_like(depth_b.float(), 1e12))
    z_b = F.grid_sample(depth_b_finite[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    agrees = (z_b.double() - z_ab).abs() <= tolerance * z_ab
    return warped, finite & ahead & inside & agrees


def warp_error(image_a: Tensor, image_b: Tensor, depth_a: Tensor, depth_b: Tensor, c2w_a, c2w_b, focal_px: float) -> Tuple[float, int]:
    """(summed squared error, pixel-channel count) of A against B warped into A, over the pixels visible in both."""
    warped, visible = warp_into(image_b, depth_a, depth_b, c2w_a, c2w_b, focal_px)
    mask = visible[None].expand_as(warped).float()
    return float((((image_a.float().clamp(0, 1) - warped.clamp(0, 1)) ** 2) * mask).sum()), int(mask.sum())


def warp_psnr(image_a: Tensor, image_b: Tensor, depth_a: Tensor, depth_b: Tensor, c2w_a, c2w_b, focal_px: float) -> float:
    """PSNR (dB) of A against B warped into A, over the pixels visible in both; nan when none is."""
    error, count = warp_error(image_a, image_b, depth_a, depth_b, c2w_a, c2w_b, focal_px)
    return to_db(error / count) if count else float("nan")


def pairs_warp_psnr(images: Tensor, depths: Tensor, cameras: Sequence, pairs: Sequence[Tuple[int, int]], size: int) -> Dict[str, float]:
    """Measure (b) over `pairs` (a, b) of views: images [N, 3, H, W], z-depths [N, H, W], world `OrbitCamera`s.

    Returns the mean of the per-pair dB, the pooled dB and the share of pixels visible in both views.
    """
    per_pair, error_sum, count_sum = [], 0.0, 0
    for a, b in pairs:
        error, count = warp_error(images[a], images[b], depths[a], depths[b], cameras[a].c2w(), cameras[b].c2w(), cameras[a].focal * size)
        if count:
            per_pair.append(to_db(error / count))
        error_sum, count_sum = error_sum + error, count_sum + count
    return {
        "mean_of_pairs": float(np.mean(per_pair)) if per_pair else float("nan"),
        "pooled": to_db(error_sum / count_sum) if count_sum else float("nan"),
        "visible": count_sum / max(1, 3 * size * size * len(pairs)),
    }


def consistency_summary(renders: Dict[str, Tensor], colours: Dict[str, Sequence[str]], cameras: Sequence,
                        warp_pairs: Sequence[Tuple[int, int]], size: int) -> Dict[str, object]:
    """Both measures for the source and edited renders of one run.

    `renders` holds "source"/"edited" images [N, 3, H, W] and "source_depth"/"edited_depth" z-depths [N, H, W];
    `colours` the judge's colour word per view for each; `cameras` the N world-frame `OrbitCamera`s;
    `warp_pairs` the (held-out, partner) pairs to warp.
    """
    judge_pairs = neighbour_pairs([camera.azimuth_deg for camera in cameras])
    out: Dict[str, object] = {"judge_pairs": len(judge_pairs), "warp_pairs": len(warp_pairs)}
    for name in ("source", "edited"):
        out[f"{name}_color_agreement"] = read_agreement(colours[name], judge_pairs)
        out[f"{name}_warp_psnr"] = pairs_warp_psnr(renders[name], renders[f"{name}_depth"], cameras, warp_pairs, size)
    out["warp_psnr_change"] = out["edited_warp_psnr"]["mean_of_pairs"] - out["source_warp_psnr"]["mean_of_pairs"]  # type: ignore[index]
    return out
