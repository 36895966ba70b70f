"""Artefact measure: ringing, overshoot and blotches that PSNR does not see.

A deblurred value is *plausible* when it stays inside the local range (min / max over a window)
of a reference image: blur, and its correct removal, never leave that range (a disc of radius r
averages values found within r px), whereas ringing, overshoot halos and blotches do. The measure
is the share of pixels near strong edges of the reference whose value leaves the reference's local
range, in any channel, by more than ``tol`` (2/255 by default): 0 for the reference itself, 0 for a
blur of it by a radius up to ``window`` px, high for a ringing deconvolution.

- :func:`artefact_map` / :func:`artefact_share`: against a ground truth (the window covers the
  largest blur radius, so a blurred input scores near 0 and a correct deblur too).
- :func:`input_artefact_share`: reference-free, against the method's own input (photos without
  ground truth; also the sharp-input check, where the input IS the truth). Deblurring legitimately
  restores contrast that the blurred input lacks, so this reads higher than the ground-truth
  variant on heavily blurred photos; compare methods on the same inputs.

Values are compared in the encoding they are shown in (sRGB for colour photos): ringing in a dark
region is small in linear light but glaring on screen.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.classical.filters import local_range
from dpcli.metrics.image import _as_nchw

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["artefact_map", "artefact_share", "input_artefact_share", "edge_band", "local_range"]

TOL = 2.0 / 255.0  # how far outside the local range counts (one 8-bit step either side is noise)
WINDOW = 10  # local-range radius (px): at least the largest blur radius of the data
EDGE = 0.08  # strong edge: grey gradient magnitude (units per px, central differences) above this
BAND = 16  # "near" a strong edge: within this many px (ringing spreads several radii)


def _nchw(x: ArrayLike, name: str) -> torch.Tensor:
    """(N, C, H, W) float32 of an image or batch (the layouts :mod:`dpcli.metrics.image` accepts)."""
    return _as_nchw(x, name).float()


def edge_band(reference: torch.Tensor, edge: float = EDGE, band: int = BAND) -> torch.Tensor:
    """Pixels within ``band`` px of a strong edge of the reference.

    Args:
        reference: (N, C, H, W); its channel mean is the grey image whose gradient magnitude
            (central differences) above ``edge`` marks the strong edges.
    Returns:
        bool (N, 1, H, W).
    """
    g = reference.mean(1, keepdim=True)
    gp = F.pad(g, (1, 1, 1, 1), mode="replicate")
    gx = (gp[..., 1:-1, 2:] - gp[..., 1:-1, :-2]) / 2
    gy = (gp[..., 2:, 1:-1] - gp[..., :-2, 1:-1]) / 2
    strong = ((gx * gx + gy * gy).sqrt() > edge).float()
    return local_range(strong, band)[1] > 0


def artefact_map(pred: ArrayLike, reference: ArrayLike, *, tol: float = TOL, window: int = WINDOW,
                 edge: float = EDGE, band: int = BAND) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a prediction leaves the reference's local range near the reference's strong edges.

    Args:
        pred, reference: (N, C, H, W), (C, H, W) or (H, W), same shape, values in [0, 1] in the
            encoding they are displayed in.
        tol: allowed excursion beyond the local range; window: local-range radius (px);
            edge, band: see :func:`edge_band`.
    Returns:
        (artefact, considered): bool (N, 1, H, W) each; artefact implies considered.
    Raises:
        ValueError: the shapes differ.

    >>> gt = torch.zeros(1, 1, 32, 32); gt[..., 16:] = 1
    >>> ring = gt.clone(); ring[..., 12, :] = -0.1
    >>> a, near = artefact_map(ring, gt); bool(a[0, 0, 12, 5]), bool(near[0, 0, 12, 5])
    (True, True)
    """
    p, r = _nchw(pred, "pred"), _nchw(reference, "reference")
    if p.shape != r.shape:
        raise ValueError(f"pred and reference differ in shape: {tuple(p.shape)} vs {tuple(r.shape)}")
    lo, hi = local_range(r, window)
    out = ((p < lo - tol) | (p > hi + tol)).any(1, keepdim=True)
    near = edge_band(r, edge, band)
    return out & near, near


def artefact_share(pred: ArrayLike, reference: ArrayLike, mask: ArrayLike | None = None, *, tol: float = TOL,
                   window: int = WINDOW, edge: float = EDGE, band: int = BAND) -> torch.Tensor:
    """Share of the pixels near strong reference edges where ``pred`` leaves the reference's local
    range by more than ``tol`` (ringing, overshoot, blotches), per image.

    Args:
        pred, reference: (N, C, H, W), (C, H, W) or (H, W) in [0, 1], display encoding.
        mask: optional bool (H, W), False where pixels do not count (e.g. the Canon label corner).
        tol, window, edge, band: see :func:`artefact_map`.
    Returns:
        (N,) float in [0, 1] (0 where no strong edge exists).

    >>> gt = torch.zeros(1, 1, 32, 32); gt[..., 16:] = 1
    >>> float(artefact_share(gt, gt))
    0.0
    """
    art, near = artefact_map(pred, reference, tol=tol, window=window, edge=edge, band=band)
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).bool()
        m = m.reshape(1, 1, *m.shape[-2:])
        art, near = art & m, near & m
    count = near.sum((1, 2, 3)).clamp_min(1)
    return art.sum((1, 2, 3)).float() / count


def input_artefact_share(pred: ArrayLike, inp: ArrayLike, mask: ArrayLike | None = None, *, tol: float = TOL,
                         window: int = 2 * WINDOW, edge: float = EDGE / 4, band: int = BAND) -> torch.Tensor:
    """Reference-free variant: the same share against the method's own input (no ground truth).

    The input's edges are softer (blurred), hence the lower edge threshold, and a deblurred edge
    may legitimately exceed a blurred input's range within a blur radius, hence the wider window.
    Args/Returns as :func:`artefact_share` with ``inp`` the (combined) input image.
    """
    return artefact_share(pred, inp, mask, tol=tol, window=window, edge=edge, band=band)
