"""Local detail of an image, and a gate that keeps a correction only where it restores detail.

:func:`band_detail` is the local RMS of an image's band-passed values (sRGB): how much detail it
holds between two scales. :func:`correction_gate` compares what a deblurring network changed with
the detail the input already holds at the same scales. Deblurring restores detail that is missing:
on a blurred edge the change is large against what is left there; on a sharp texture a real
deblurrer changes nothing, and what a network changes there (a "painterly" re-drawing of fur,
halos on crisp edges) is small against the detail present. So the ratio tells a correction worth
keeping from a network's noise, without an estimate of the blur.

:func:`endorsement_gate` asks a second network instead: the share of a correction that another
deblurrer, trained to leave textures that are soft in themselves alone, makes too. Where the two
agree (a blurred edge) the correction stays; where only the first network redraws (soft fur, bark)
it is dropped. A single photo cannot say which soft texture is blurred; two networks trained on
different answers to that question can at least say where the answer matters.

:func:`in_focus_share` asks it of the whole photo: the share of its detailed pixels that a blur map
(a BlurNet's probability) reads in focus. A photo out of focus in parts has a part in focus (the
subject); a photo with none is soft everywhere, and a single photo cannot tell a scene soft in itself
(bokeh, film grain, a soft surface) from one taken out of focus.
"""
from __future__ import annotations

import torch

from dpcli.optics.windows import box_mean, ramp_gate, smooth_mean

__all__ = ["band_detail", "correction_gate", "CORRECTION_GATE_DEFAULTS", "endorsement", "endorsement_gate",
           "ENDORSEMENT_GATE_DEFAULTS", "in_focus_pixels", "in_focus_share", "IN_FOCUS_DEFAULTS"]

# Settings (sRGB values, px). Chosen from what the ratio means (a change under 0.3 of the detail
# present is a re-drawing, one above 0.8 restores what was missing; eps 1/255: below what an 8-bit
# photo shows) and checked on the Canon dev scenes, where neighbouring settings (low 0.2-0.4, band
# 2-8 px, window 3-5 px, eps 0.002-0.008) move the mean gain by at most 0.05 dB (docs/benchmarks.md,
# "Correction gate").
CORRECTION_GATE_DEFAULTS = dict(low=0.3, high=0.8, band=4.0, window=3, eps=1 / 255, spread=4)
# Settings of the endorsement gate (sRGB values, px): a correction kept where the second network
# makes at least 0.8 of it, dropped below 0.4; the finest detail (below ~1 px: what a redrawing of
# fur or bark changes) over 21 x 21 px, the open gate dilated over 12 px (so a correction stays along
# the whole of an endorsed edge). Chosen from a grid (band 1-4 px, window 4-16, spread 4-12, 0.3-0.45 /
# 0.7-0.9) on the Canon dev captures and scene_c as the setting that keeps the Canon gain >= +0.84 with
# scene_c >= 37 dB, then checked on held-out synthetic scenes and Debian photos (docs/benchmarks.md,
# "Endorsement gate"): fitted to five images, so read its margins there.
ENDORSEMENT_GATE_DEFAULTS = dict(low=0.4, high=0.8, band=1.0, window=10, eps=1 / 255, spread=12)
# Settings of the in-focus share (sRGB values, px): a pixel has detail where its band-passed RMS below
# 2 px over 7 x 7 px reaches 4/255 (what an 8-bit photo shows over its noise), and is in focus where
# the blur map reads under 0.3 (the BlurNet gate's closed end, dpcli.models.blurnet.GATE_SETTINGS).
IN_FOCUS_DEFAULTS = dict(below=0.3, detail=4 / 255, band=2.0, window=3)


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


def endorsement(image: torch.Tensor, first: torch.Tensor, second: torch.Tensor, *, band: float = 1.0,
                window: int = 10, eps: float = 1 / 255) -> torch.Tensor:
    """How much of the first network's correction the second one makes too: the local projection of
    the second's change onto the first's, both high-passed (minus their local mean at ``band`` px: the
    finest detail; a shift of the local mean does not count), over a (2 ``window`` + 1)^2 px box. 1
    where both change the same, 0 where the second changes nothing there (or something unrelated),
    negative where it changes the opposite.
    ``eps`` per channel is added to the first's change (flat regions: no change, no claim).

    (B, C, H, W) input, first and second outputs (same encoding) -> (B, 1, H, W).
    """
    da, db = first - image, second - image
    da, db = da - smooth_mean(da, band), db - smooth_mean(db, band)
    agree = box_mean((da * db).sum(1, keepdim=True), window)
    own = box_mean((da * da).sum(1, keepdim=True), window)
    return agree / (own + image.shape[1] * eps * eps)


def endorsement_gate(image: torch.Tensor, first: torch.Tensor, second: torch.Tensor, *, low: float = 0.4,
                     high: float = 0.8, band: float = 1.0, window: int = 10, eps: float = 1 / 255,
                     spread: int = 12) -> torch.Tensor:
    """Where the first network's correction is endorsed by the second (:func:`endorsement`): 0 at or
    below ``low``, 1 from ``high`` on, the open gate dilated and smoothed over ``spread`` px.
    (B, C, H, W) x 3 (sRGB values) -> (B, 1, H, W) in [0, 1]."""
    return ramp_gate(endorsement(image, first, second, band=band, window=window, eps=eps), low, high, spread)


def in_focus_pixels(blur_prob: torch.Tensor, image: torch.Tensor, *, below: float = 0.3, detail: float = 4 / 255,
                    band: float = 2.0, window: int = 3) -> torch.Tensor:
    """Which pixels have detail (:func:`band_detail` of ``image`` at ``band`` px over a
    (2 ``window`` + 1)^2 px box, at least ``detail``), and which of those ``blur_prob`` reads in
    focus (under ``below``). A local operator (it reads 3 ``smooth_radius(band)`` + ``window`` px
    around a pixel), so it runs in strips (:func:`dpcli.optics.windows.by_rows`).

    (B, 1, H, W) probability that a pixel is out of focus, (B, C, H, W) image (sRGB values) ->
    (B, 2, H, W) of 0 / 1: channel 0 has detail, channel 1 has detail and is in focus.
    """
    has = band_detail(image, band, window) >= detail
    return torch.cat([has, has & (blur_prob < below)], 1).to(blur_prob.dtype)


def in_focus_share(pixels: torch.Tensor) -> torch.Tensor:
    """The share of a photo's pixels with detail that are in focus, from :func:`in_focus_pixels`;
    0 for a photo with no detail (nothing to deblur). (B, 2, H, W) -> (B,)."""
    counts = pixels.double().flatten(2).sum(2)
    return (counts[:, 1] / counts[:, 0].clamp_min(1)).float()
