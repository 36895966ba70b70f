"""Windows and window means: raised-cosine ramps and tapers, bilinear (tent) patch weights, box means.

Small batched torch functions shared by ``dpcli.classical``, ``dpcli.zeroshot`` and the renderer.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["cosine_ramp", "taper_window", "tent_weights", "box_mean", "smooth_mean", "restore_local_mean", "by_rows",
           "smooth_radius", "STRIP_ROWS"]

# rows per strip of :func:`by_rows`: a 12 MP frame in 6 strips (a strip's temporaries ~1/6 of a frame's)
STRIP_ROWS = 512


def cosine_ramp(n: int, offset: float = 0.0, length: float | None = None, dtype=torch.float32,
                device=None) -> torch.Tensor:
    """Rising raised-cosine (half-Hann) ramp: ``0.5 - 0.5 cos(pi (i + offset) / length)`` for
    i = 0..n-1 (``length`` defaults to n). (n,).

    ``offset=0`` starts at exactly 0 (a fade to nothing at the outer edge); ``offset=1,
    length=n+1`` keeps both 0 and 1 out; ``offset=0.5`` samples pixel centres."""
    length = n if length is None else length
    t = (torch.arange(n, dtype=dtype, device=device) + offset) / length
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def taper_window(n: int, ramp: int, offset: float = 0.0, length: float | None = None, dtype=torch.float32,
                 device=None) -> torch.Tensor:
    """(n,) window: 1 in the middle, a :func:`cosine_ramp` of ``ramp`` samples rising at the start
    and its mirror falling at the end (a Tukey window)."""
    w = torch.ones(n, dtype=dtype, device=device)
    if ramp > 0:
        r = cosine_ramp(ramp, offset, length, dtype, device)
        w[:ramp] = r
        w[n - ramp :] = r.flip(0)
    return w


def tent_weights(n: int, starts: Sequence[float], size: float) -> torch.Tensor:
    """Bilinear (tent) weights of patches of ``size`` px starting at ``starts`` along an axis of
    ``n`` px: (len(starts), n) float64, a partition of unity; each tent peaks at its patch centre
    and reaches 0 at the neighbours' centres; pixels beyond the outer centres take the nearest patch."""
    centres = torch.tensor([s + size / 2 - 0.5 for s in starts], dtype=torch.float64)
    pos = torch.arange(n, dtype=torch.float64).clamp(float(centres[0]), float(centres[-1]))
    return (1 - (pos[None] - centres[:, None]).abs() / size).clamp_min(0)


def _box_sum_1d(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Mean over a 2r+1 window along ``dim`` (-1 or -2), clipped to the axis, by a cumulative sum."""
    n = x.shape[dim]
    pads = [r + 1, r, 0, 0] if dim == -1 else [0, 0, r + 1, r]
    c = torch.cumsum(F.pad(x, pads), dim=dim)  # zero-padded: sums clip at the image edges
    total = c.narrow(dim, 2 * r + 1, n) - c.narrow(dim, 0, n)
    del c  # a frame-sized float64 buffer: freed before the next one is made
    idx = torch.arange(n, device=x.device, dtype=x.dtype)
    count = (idx + r + 1).clamp(max=n) - (idx - r).clamp(min=0)
    shape = [1] * x.ndim
    shape[dim] = n
    return total.div_(count.view(shape)) if not total.requires_grad else total / count.view(shape)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1) x (2r+1) window around each pixel, clipped to the image (borders
    average the pixels inside only). (..., H, W) -> same shape and dtype.

    Separable cumulative sums in float64: O(1) per pixel whatever the radius, and exact to ~1e-15
    relative to the row's total (float32 sums would lose small local means next to large ones).
    Without gradients the planes (H, W) are filtered one at a time into the output, so the float64
    buffers are one plane's, not the batch's (a 12 MP RGB frame: 0.3 instead of 1.4 GiB; the
    values are the same). Differentiable in ``x``."""
    r = int(radius)
    if r <= 0:
        return x
    if x.requires_grad or x.ndim < 3:
        y = x.double() if x.dtype != torch.float64 else x
        return _box_sum_1d(_box_sum_1d(y, r, -1), r, -2).to(x.dtype)
    planes = x.reshape(-1, *x.shape[-2:])
    out = torch.empty_like(planes)
    for i, plane in enumerate(planes):
        out[i] = _box_sum_1d(_box_sum_1d(plane.double(), r, -1), r, -2)
    return out.view(x.shape)


def smooth_mean(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-like local mean of standard deviation ~``sigma`` px: three passes of :func:`box_mean`
    with the radius r whose variance r (r + 1) / 3 per pass sums to ~sigma^2 (clipped at the borders
    the same way). (..., H, W) -> same shape and dtype. Differentiable in ``x``."""
    if sigma <= 0:
        return x
    r = smooth_radius(sigma)
    return box_mean(box_mean(box_mean(x, r), r), r)


def smooth_radius(sigma: float) -> int:
    """The box radius r of each of :func:`smooth_mean`'s three passes (r (r + 1) / 3 per pass sums to
    ~sigma^2); its result at a pixel reads the input within 3 r px."""
    return max(1, round(math.sqrt(sigma * sigma + 0.25) - 0.5))


def restore_local_mean(pred: torch.Tensor, reference: torch.Tensor, sigma: float) -> torch.Tensor:
    """``pred`` with the local mean of ``reference`` at scale ``sigma`` px: pred + smooth(reference - pred).

    Defocus blur conserves energy (every kernel sums to 1), so the sharp image and its blurred
    capture agree in local mean over windows wider than the blur; a deblurring network's output
    should too. This removes low-frequency drifts (brightness, colour cast) a network learnt from
    its training data, keeping every detail finer than ``sigma``. (..., C, H, W), same shapes."""
    return pred + smooth_mean(reference.to(pred.dtype) - pred, sigma)


def ramp_gate(measure: torch.Tensor, low: float, high: float, spread: int = 0) -> torch.Tensor:
    """A gate from a per-pixel measure of blur (disparity, radius, px): 0 at or below ``low``,
    1 at or above ``high``, linear between; an open gate is dilated over ``spread`` px and then
    smoothed over the same radius, so a correction reaches the whole extent of a blurred edge and
    the gate leaves no seams. (B, 1, H, W) -> (B, 1, H, W) in [0, 1], same dtype."""
    g = ((measure - low) / max(high - low, 1e-6)).clamp(0, 1)
    if spread > 0:  # the square dilation as two 1-D ones: the same maximum, O(spread) per pixel
        k = 2 * spread + 1
        g = F.max_pool2d(F.max_pool2d(g, (1, k), stride=1, padding=(0, spread)), (k, 1), stride=1,
                         padding=(spread, 0))
        g = box_mean(g, spread)
    return g.clamp(0, 1)


def by_rows(fn, tensors: Sequence[torch.Tensor], halo: int, *, align: int = 1, rows: int = STRIP_ROWS) -> torch.Tensor:
    """A local operator run on horizontal strips: ``fn(*tensors)`` computed ``rows`` rows at a time,
    each strip read with ``halo`` rows of context above and below, which are cut from its result.

    For an ``fn`` whose output at a pixel reads its inputs within ``halo`` rows (window means,
    gates), the result is the full-frame one up to float rounding (the window sums of a strip start
    from its own first row), while its temporaries are a strip's, not a frame's. ``align``: strips
    start on multiples of it (an ``fn`` that pools s x s px needs ``align`` = s).
    (..., H, W) tensors of one height -> ``fn``'s (..., H, W') result, its strips written in turn.
    """
    h = tensors[0].shape[-2]
    halo = -(-halo // align) * align
    rows = max(align, -(-rows // align) * align)
    if h <= rows + 2 * halo:
        return fn(*tensors)
    result = None  # written strip by strip: no list of strips and no concatenated copy of them
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        a, b = max(0, y0 - halo), min(h, y1 + halo)
        out = fn(*(t[..., a:b, :] for t in tensors))
        if result is None:
            result = out.new_empty((*out.shape[:-2], h, out.shape[-1]))
        result[..., y0:y1, :] = out[..., y0 - a:y1 - a, :]
        del out
    return result
