"""Defocus-map metrics: absolute radius error (synthetic, known units) and affine-invariant
measures (real data whose GT maps are normalised per scene, e.g. Pixel 4).

The affine-invariant errors follow Garg et al. 2019 ("Learning single camera depth estimation
using dual-pixels"), as used by Xin et al. 2021: AIWE(p) = min over (a, b) of the weighted
L_p error between GT and a * pred + b; plus 1 - |Spearman rank correlation|.
Maps are (H, W) arrays (numpy or torch); ``valid`` (H, W) bool selects the pixels compared.
"""
from __future__ import annotations

import numpy as np


def _flat(pred, gt, valid=None, weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred, dtype=np.float64).squeeze()
    g = np.asarray(gt.detach().cpu() if hasattr(gt, "detach") else gt, dtype=np.float64).squeeze()
    if p.shape != g.shape:
        raise ValueError(f"defocus maps differ in shape: {p.shape} vs {g.shape}")
    keep = np.isfinite(p) & np.isfinite(g)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool).reshape(p.shape)
    w = np.ones_like(p) if weight is None else np.asarray(weight, dtype=np.float64).reshape(p.shape)
    if keep.sum() < 2:
        raise ValueError("fewer than 2 valid pixels to compare")
    return p[keep], g[keep], w[keep]


def mean_abs_radius_error(pred, gt, valid=None) -> float:
    """Mean |pred - gt| in px over valid pixels (both maps signed radii in px)."""
    p, g, _ = _flat(pred, gt, valid)
    return float(np.abs(p - g).mean())


def spearman(pred, gt, valid=None) -> float:
    """Spearman rank correlation over valid pixels (ties get average ranks)."""
    from scipy.stats import rankdata  # here, not at import: scipy.stats costs 1.7 s of every `run`

    p, g, _ = _flat(pred, gt, valid)
    rp, rg = rankdata(p), rankdata(g)
    rp -= rp.mean()
    rg -= rg.mean()
    denom = np.sqrt((rp * rp).sum() * (rg * rg).sum())
    return float((rp * rg).sum() / denom) if denom > 0 else 0.0


def _weighted_affine_fit(p: np.ndarray, g: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    a_mat = np.stack([p, np.ones_like(p)], axis=1) * np.sqrt(w)[:, None]
    sol, *_ = np.linalg.lstsq(a_mat, g * np.sqrt(w), rcond=None)
    return float(sol[0]), float(sol[1])


def aiwe2(pred, gt, valid=None, weight=None) -> float:
    """Affine-invariant weighted RMSE: sqrt(min_ab sum w (g - a p - b)^2 / sum w) (GT units)."""
    p, g, w = _flat(pred, gt, valid, weight)
    a, b = _weighted_affine_fit(p, g, w)
    return float(np.sqrt((w * (g - a * p - b) ** 2).sum() / w.sum()))


def aiwe1(pred, gt, valid=None, weight=None, iterations: int = 10) -> float:
    """Affine-invariant weighted MAE: min_ab sum w |g - a p - b| / sum w, solved by IRLS (GT units)."""
    p, g, w = _flat(pred, gt, valid, weight)
    a, b = _weighted_affine_fit(p, g, w)
    for _ in range(iterations):
        r = np.abs(g - a * p - b)
        a, b = _weighted_affine_fit(p, g, w / np.maximum(r, 1e-6))
    return float((w * np.abs(g - a * p - b)).sum() / w.sum())


def defocus_metrics(pred, gt, valid=None, *, absolute: bool = False) -> dict[str, float]:
    """All defocus-map figures: always Spearman, AIWE(1), AIWE(2), 1-|rho_s|; ``absolute=True``
    (GT in px, e.g. synthetic) adds the mean absolute radius error ``mae_px``."""
    rho = spearman(pred, gt, valid)
    out = {"spearman": rho, "aiwe1": aiwe1(pred, gt, valid), "aiwe2": aiwe2(pred, gt, valid),
           "one_minus_abs_spearman": 1.0 - abs(rho)}
    if absolute:
        out["mae_px"] = mean_abs_radius_error(pred, gt, valid)
    return out
