"""Local detail of an image, and a gate that keeps a correction only where it restores detail.

:func:`band_detail` is the local RMS of an image's band-passed values (sRGB): how much detail it
holds between two scales. :func:`correction_gate` compares what a deblurring network changed with
the detail the input already holds at the same scales. Deblurring restores detail that is missing:
on a blurred edge the change is large against what is left there; on a sharp texture a real
deblurrer changes nothing, and what a network changes there (a "painterly" re-drawing of fur,
halos on crisp edges) is small against the detail present. So the ratio tells a correction worth
keeping from a network's noise, without an estimate of the blur.
"""
from __future__ import annotations

import torch

from dpcli.optics.windows import box_mean, ramp_gate, smooth_mean

__all__ = ["band_detail", "correction_gate", "CORRECTION_GATE_DEFAULTS"]

# Settings (sRGB values, px). Chosen from what the ratio means (a change under 0.3 of the detail
# present is a re-drawing, one above 0.8 restores what was missing; eps 1/255: below what an 8-bit
# photo shows) and checked on the Canon dev scenes, where neighbouring settings (low 0.2-0.4, band
# 2-8 px, window 3-5 px, eps 0.002-0.008) move the mean gain by at most 0.05 dB (docs/benchmarks.md,
# "Correction gate").
CORRECTION_GATE_DEFAULTS = dict(low=0.3, high=0.8, band=4.0, window=3, eps=1 / 255, spread=4)


def band_detail(x: torch.Tensor, band: float, window: int, fine: float = 0.0) -> torch.Tensor:
    """Local RMS of ``x`` band-passed between ``fine`` and ``band`` px (Gaussian-like local means;
    ``fine`` 0 = from the pixel up), averaged over channels and a (2 window + 1)^2 px window.
    (B, C, H, W) -> (B, 1, H, W)."""
    d = (smooth_mean(x, fine) if fine > 0 else x) - smooth_mean(x, band)
    return box_mean((d * d).mean(1, keepdim=True), window).sqrt()


def correction_gate(image: torch.Tensor, corrected: torch.Tensor, *, low: float = 0.3, high: float = 0.8,
                    band: float = 4.0, window: int = 3, eps: float = 1 / 255, spread: int = 4) -> torch.Tensor:
    """Where a correction restores missing detail: 1 where it changed the image by at least ``high``
    times the detail the input holds there (same band, :func:`band_detail`), 0 below ``low`` times.

    Args:
        image, corrected: (B, C, H, W) input and network output, sRGB values.
        low, high: the change / detail ratio at which the gate starts to open and is fully open.
        band, window: the detail measured below ``band`` px, over (2 window + 1)^2 px.
        eps: added to the input's detail (flat regions: a change must exceed ~``eps`` to count).
        spread: the open gate dilated and smoothed over this radius (px).
    Returns:
        (B, 1, H, W) gate in [0, 1].
    """
    ratio = band_detail(corrected - image, band, window) / (band_detail(image, band, window) + eps)
    return ramp_gate(ratio, low, high, spread)
