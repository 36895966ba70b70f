"""Edge-aware and box filters for the classical estimators (torch, batched).

Shapes: images (N, C, H, W). Box means (:func:`dpcli.optics.windows.box_mean`) are normalised by
the number of pixels inside the image (no padding bias at the borders).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dpcli.optics.windows import box_mean

__all__ = ["box_mean", "local_range", "range_excess", "guide_statistics", "guided_coefficients", "guided_filter",
           "weighted_guided_coefficients", "weighted_guided_filter", "upsample"]


def guide_statistics(guide: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The guide's local mean and variance over (2r + 1)^2 px: what :func:`guided_filter` needs of
    the guide alone, to compute once when many signals are filtered with the same guide and radius.
    (N, 1, H, W) -> two (N, 1, H, W)."""
    mean_i = box_mean(guide, r)
    return mean_i, box_mean(guide * guide, r) - mean_i * mean_i


def guided_coefficients(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float,
                        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                        mean_src: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-averaged linear coefficients (a, b) of He et al.'s guided filter (grey guide): its output
    is ``a * guide + b``. Computed on a downsampled guide and signal, then :func:`upsample`-d and
    applied to the full-resolution guide, they are the fast guided filter (He & Sun, 2015).

    Args:
        guide: (N, 1, H, W) guidance image (edges to keep).
        src: (N, C, H, W) signal to smooth.
        r: window radius in px; eps: regularisation in guide units squared (larger = smoother).
        stats: :func:`guide_statistics` of ``guide`` at ``r``, when already computed.
        mean_src: ``box_mean(src, r)``, when already computed.
    Returns:
        two (N, C, H, W).
    """
    mean_i, var_i = stats if stats is not None else guide_statistics(guide, r)
    mean_p = box_mean(src, r) if mean_src is None else mean_src
    cov_ip = box_mean(guide * src, r) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r), box_mean(b, r)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float,
                  stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                  mean_src: torch.Tensor | None = None) -> torch.Tensor:
    """He et al. guided filter (grey guide) at full resolution: :func:`guided_coefficients` applied
    to ``guide``. (N, 1, H, W) guide, (N, C, H, W) src -> (N, C, H, W)."""
    a, b = guided_coefficients(guide, src, r, eps, stats, mean_src)
    return a * guide + b


def upsample(x: torch.Tensor, size: tuple[int, int], scale: int) -> torch.Tensor:
    """(N, C, h, w) map computed on ``F.avg_pool2d(full, scale)`` -> (N, C, H, W) = ``size``:
    bilinear by ``scale``, the rows and columns past h * scale, w * scale (the ones the pooling
    dropped) replicated from the last."""
    if scale == 1:
        return x
    h, w = size
    inner = (x.shape[-2] * scale, x.shape[-1] * scale)
    up = F.interpolate(x, size=inner, mode="bilinear", align_corners=False)
    return F.pad(up, (0, w - inner[1], 0, h - inner[0]), mode="replicate")


def weighted_guided_coefficients(guide: torch.Tensor, src: torch.Tensor, weight: torch.Tensor, r: int,
                                 eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-averaged linear coefficients (a, b) of the confidence-weighted guided filter;
    output = a * guide + b (a, b may be upsampled first: the fast guided filter)."""
    w = weight.clamp_min(0)
    sw = box_mean(w, r).clamp_min(1e-12)

    def wmean(x: torch.Tensor) -> torch.Tensor:
        return box_mean(w * x, r) / sw

    mean_i, mean_p = wmean(guide), wmean(src)
    cov_ip = wmean(guide * src) - mean_i * mean_p
    var_i = wmean(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i.clamp_min(0) + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r), box_mean(b, r)


def weighted_guided_filter(guide: torch.Tensor, src: torch.Tensor, weight: torch.Tensor, r: int,
                           eps: float) -> torch.Tensor:
    """Confidence-weighted guided filter: low-weight pixels borrow from confident neighbours of
    similar guide value. Weighted means replace the box means of :func:`guided_filter`."""
    a, b = weighted_guided_coefficients(guide, src, weight, r, eps)
    return a * guide + b


def _running_max(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Max over the 2r+1 samples centred on each sample along ``dim`` (clipped to the ends), by
    doubling: O(log r) whole-tensor maxima (max_pool2d with long windows is slow on CPU)."""
    n = x.shape[dim]
    length = 2 * r + 1
    pad = [0, 0] * (x.ndim - 1 - (dim % x.ndim)) + [r, r]
    cur = F.pad(x, pad, value=float("-inf"))
    width = 1
    while 2 * width <= length:
        m = cur.shape[dim]
        cur = torch.maximum(cur.narrow(dim, 0, m - width), cur.narrow(dim, width, m - width))
        width *= 2
    return torch.maximum(cur.narrow(dim, 0, n), cur.narrow(dim, length - width, n))


def local_range(x: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel min and max over the (2r+1)^2 window around each pixel (clipped to the image).

    Args:
        x: (N, C, H, W).
    Returns:
        (lo, hi), each (N, C, H, W).

    >>> lo, hi = local_range(torch.rand(2, 3, 16, 16), 2)
    >>> lo.shape
    torch.Size([2, 3, 16, 16])
    """
    r = int(radius)
    if r <= 0:
        return x, x

    def dilate(t: torch.Tensor) -> torch.Tensor:
        return _running_max(_running_max(t, r, -1), r, -2)

    return -dilate(-x), dilate(x)


def range_excess(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, tol: float = 2 / 255) -> torch.Tensor:
    """How far ``x`` leaves [lo - tol, hi + tol], max over channels: (N, C, H, W) -> (N, H, W) >= 0
    (``lo``, ``hi`` from :func:`local_range` of a reference; the ringing check of the deblurrers)."""
    return ((lo - x - tol).clamp_min(0) + (x - hi - tol).clamp_min(0)).amax(1)
