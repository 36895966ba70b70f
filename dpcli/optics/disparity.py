"""Local L/R disparity of a dual-pixel pair, and the focus gate built on it.

Physics: a DP pair shows a point behind or before the focal plane displaced in opposite directions
in the two views, by an amount that grows with the blur radius; a point inside the depth of field
is not displaced at all. So the local disparity says, almost for free, where a photo is in focus:
there a deblurring method has nothing to undo, and whatever it changes is harm (oversharpening,
lost grain, a network's learnt drift). :func:`focus_gate` turns the disparity into a weight in
[0, 1] that a caller uses as ``input + gate * (output - input)``: an in-focus pair (the same image
as left and right, or a real pair inside its depth of field) comes back unchanged, its blurred
parts get the method's whole correction.

The disparity is a windowed one-dimensional Lucas-Kanade estimate: with L(x) = C(x - d/2) and
R(x) = C(x + d/2) to first order, L - R = -d dC/dx, so d = -sum((L - R) C') / sum(C'^2) over a
window. It saturates for shifts beyond the texture's scale and fades where the texture is weak, so
the gate reads it over a pyramid (views averaged over 2x2 and 4x4 px: large disparities and the soft
edges of strong blur are measured there) and takes the largest. Sign as docs/CONVENTIONS.md: positive
when the left view is displaced toward +x (content behind the focal plane).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dpcli.optics.color import linear_to_srgb
from dpcli.optics.windows import box_mean, ramp_gate

__all__ = ["local_disparity", "focus_gate", "FOCUS_GATE_DEFAULTS"]

# Gate settings (px of disparity, window radii in px, eps in squared sRGB values per px^2). Chosen
# from physics (a disparity under 0.1 px is inside the depth of field, one of 0.5 px is a visible
# blur) and checked on the Canon dev scenes, where every setting from (0.05, 0.3) to (0.2, 0.8)
# and windows 7-11 px gave the same mean gain to 0.06 dB (docs/benchmarks.md, "Focus gate").
# The pyramid (scales 1, 2, 4) keeps the gate open on blurred regions with little texture (examples/
# pairs/scene_b: 26.82 dB with scale 1 alone, 27.29 with the pyramid, 27.27 without a gate).
FOCUS_GATE_DEFAULTS = dict(low=0.1, high=0.5, window=7, eps=1e-4, spread=8, scales=(1, 2, 4))


def local_disparity(left: torch.Tensor, right: torch.Tensor, window: int = 7, eps: float = 1e-4) -> torch.Tensor:
    """Per-pixel horizontal disparity (px) of a DP pair, windowed Lucas-Kanade.

    Args:
        left, right: (B, C, H, W) views in a perceptual encoding (sRGB values in [0, 1]); the
            channels are averaged.
        window: radius (px) of the square window the estimate pools over.
        eps: added to the window's gradient energy: where the texture is weaker than ~sqrt(eps)
            per px (flat areas, where nothing can be measured) the estimate falls to 0.
    Returns:
        (B, 1, H, W) disparity in px, positive when the left view is displaced toward +x.
    Raises:
        ValueError: the views differ in shape or are not 4-d.

    >>> x = torch.linspace(0, 1, 64).repeat(1, 1, 32, 1)
    >>> local_disparity(x, x).abs().max().item()
    0.0
    """
    if left.shape != right.shape or left.ndim != 4:
        raise ValueError(f"views must be (B, C, H, W) of one shape, got {tuple(left.shape)} and {tuple(right.shape)}")
    lg, rg = left.mean(1, keepdim=True), right.mean(1, keepdim=True)
    c = F.pad((lg + rg) / 2, (1, 1, 0, 0), mode="replicate")
    gx = (c[..., 2:] - c[..., :-2]) / 2
    num = box_mean((lg - rg) * gx, window)
    return -num / (box_mean(gx * gx, window) + eps)


def focus_gate(left: torch.Tensor, right: torch.Tensor, *, srgb: bool, low: float = 0.1, high: float = 0.5,
               window: int = 7, eps: float = 1e-4, spread: int = 8, scales: tuple[int, ...] = (1, 2, 4)
               ) -> torch.Tensor:
    """Where a DP pair is out of focus: 0 inside the depth of field, 1 where it is clearly blurred.

    Args:
        left, right: (B, C, H, W) views in [0, 1]; ``srgb`` says how they are encoded (linear views
            are measured in sRGB values, so one ``eps`` serves raw planes and photos alike).
        low, high: |disparity| (px) at which the gate starts to open and is fully open.
        window, eps: as :func:`local_disparity`, at every scale.
        scales: the views averaged over s x s px for each s; the disparity (in full-resolution px)
            is the largest of the scales', upsampled bilinearly.
        spread: radius (px) over which an open gate is dilated and then smoothed, so the correction
            reaches the extent of a blurred edge and the gate has no visible seams.
    Returns:
        (B, 1, H, W) gate in [0, 1], on the views' device and dtype.
    """
    if not srgb:
        left, right = linear_to_srgb(left.clamp(0, 1)), linear_to_srgb(right.clamp(0, 1))
    h, w = left.shape[-2:]
    d = torch.zeros(left.shape[0], 1, h, w, dtype=left.dtype, device=left.device)
    for s in scales:
        small = (F.avg_pool2d(left, s), F.avg_pool2d(right, s)) if s > 1 else (left, right)
        ds = local_disparity(*small, window, eps).abs() * s
        if s > 1:
            ds = F.interpolate(ds, size=(h, w), mode="bilinear", align_corners=False)
        d = torch.maximum(d, ds)
    return ramp_gate(d, low, high, spread)
