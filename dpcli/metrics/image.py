"""Full-reference image metrics as in docs/CONVENTIONS.md: PSNR, SSIM (scikit-image defaults), MAE.

All functions accept numpy arrays or torch tensors in [0, 1] of shape (H, W), (C, H, W) or
(N, C, H, W); the computation runs in float64 torch on the input's device. For (N, C, H, W) the
per-image values are averaged (the published-table convention: per image, then the plain mean).
An optional boolean ``mask`` (H, W) restricts the comparison to True pixels (e.g. the Canon
label corner masked out). Runtime does not need scikit-image; tests check equality with it.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

SSIM_WIN = 7  # scikit-image default win_size for gaussian_weights=False
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _as_nchw(x: ArrayLike, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach()
    t = t.to(torch.float64)
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    elif t.ndim != 4:
        raise ValueError(f"{name}: expected (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    return t


def _pair(pred: ArrayLike, gt: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = _as_nchw(pred, "pred"), _as_nchw(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt differ in shape: {tuple(p.shape)} vs {tuple(g.shape)}")
    return p, g.to(p.device)


def _mask_tensor(mask: ArrayLike | None, like: torch.Tensor) -> torch.Tensor | None:
    if mask is None:
        return None
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).to(like.device)
    m = m.reshape(m.shape[-2:]).bool()
    if tuple(m.shape) != tuple(like.shape[-2:]):
        raise ValueError(f"mask shape {tuple(m.shape)} does not match image size {tuple(like.shape[-2:])}")
    return m


def _per_image_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(N, C, H, W) -> (N,) mean over channels and (masked) pixels."""
    if mask is None:
        return err.mean(dim=(1, 2, 3))
    return err[:, :, mask].mean(dim=(1, 2))


def mse(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean squared error per image, averaged over images."""
    p, g = _pair(pred, gt)
    return float(_per_image_mean((p - g) ** 2, _mask_tensor(mask, p)).mean())


# "No harm": a sharp photo through a method comes back within these PSNRs of itself (mean over the
# dev GT photos, and each one). The shipping rule (dpcli.train.evaluate) and the defaults of `run`
# (dpcli.methods.default_method) read them from here.
SHARP_PSNR_MEAN_DB, SHARP_PSNR_EACH_DB = 40.0, 37.0


def spares_sharp(mean_db: float, min_db: float) -> bool:
    """Whether a method's harm figure (PSNR of sharp photos through it against themselves, mean and
    worst, dB) says it gives sharp photos back unchanged (:data:`SHARP_PSNR_MEAN_DB`, :data:`SHARP_PSNR_EACH_DB`)."""
    return mean_db >= SHARP_PSNR_MEAN_DB and min_db >= SHARP_PSNR_EACH_DB


def psnr(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, data_range: float = 1.0) -> float:
    """PSNR = 10 log10(data_range^2 / MSE) per image, then the plain mean over images (dB).

    Identical images give ``inf``.
    """
    p, g = _pair(pred, gt)
    m = _per_image_mean((p - g) ** 2, _mask_tensor(mask, p))
    values = [math.inf if v == 0 else 10.0 * math.log10(data_range ** 2 / v) for v in m.tolist()]
    return float(np.mean(values))


def mae(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute error on [0, 1] values, per image then averaged."""
    p, g = _pair(pred, gt)
    return float(_per_image_mean((p - g).abs(), _mask_tensor(mask, p)).mean())


def ssim_map(pred: ArrayLike, gt: ArrayLike, data_range: float = 1.0, win_size: int = SSIM_WIN) -> torch.Tensor:
    """SSIM map (N, C, H - win + 1, W - win + 1) exactly as scikit-image computes it before cropping.

    scikit-image filters with a uniform window (reflect padding) and then crops (win-1)/2 px on
    every side before averaging, so the padded border never counts: the valid window average
    (``avg_pool2d`` with stride 1, no padding) gives the same values for the kept pixels.
    Sample covariance (``use_sample_covariance=True``): variances scaled by NP / (NP - 1).
    """
    p, g = _pair(pred, gt)
    if min(p.shape[-2:]) < win_size:
        raise ValueError(f"image {tuple(p.shape[-2:])} is smaller than the SSIM window {win_size}")
    n, c, h, w = p.shape
    x = torch.cat([p, g, p * p, g * g, p * g], dim=1).reshape(n * 5, c, h, w)
    mu = F.avg_pool2d(x.reshape(n, 5 * c, h, w), win_size, stride=1).reshape(n, 5, c, h - win_size + 1, w - win_size + 1)
    ux, uy, uxx, uyy, uxy = mu.unbind(1)
    npix = win_size * win_size
    cov_norm = npix / (npix - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, data_range: float = 1.0,
         win_size: int = SSIM_WIN) -> float:
    """Mean SSIM with scikit-image defaults (7x7 uniform window, K1=0.01, K2=0.03, sample
    covariance), channels averaged, then averaged over images.

    With ``mask`` the SSIM map (cropped like scikit-image's) is averaged over the windows whose
    centre pixel is in the mask.
    """
    smap = ssim_map(pred, gt, data_range=data_range, win_size=win_size)
    if mask is None:
        return float(smap.mean(dim=(1, 2, 3)).mean())
    pad = (win_size - 1) // 2
    p = _as_nchw(pred, "pred")
    m = _mask_tensor(mask, p)[pad: p.shape[-2] - pad, pad: p.shape[-1] - pad].to(smap.device)
    return float(smap[:, :, m].mean(dim=(1, 2)).mean())


def image_metrics(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None) -> dict[str, float]:
    """{"psnr", "ssim", "mae"} of one image pair (the published trio)."""
    return {"psnr": psnr(pred, gt, mask), "ssim": ssim(pred, gt, mask), "mae": mae(pred, gt, mask)}


def fourier_shift(image: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Translate (..., H, W) content by (dx, dy) px (sub-pixel, periodic: the borders wrap)."""
    h, w = image.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=image.device)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64, device=image.device)[None, :]
    phase = torch.exp(-2j * math.pi * (fx * dx + fy * dy))
    return torch.fft.irfft2(torch.fft.rfft2(image.to(torch.float64)) * phase, s=(h, w))


def aligned_psnr(pred: ArrayLike, gt: ArrayLike, max_shift: float = 2.0, margin: int | None = None
                 ) -> tuple[float, tuple[float, float]]:
    """PSNR after the best global translation of ``pred`` onto ``gt`` (to 1/8 px), and that shift.

    A diagnostic, not the published metric: it tells how much of a score is lost to the
    registration of the ground truth (RealBlur aligns before scoring; Pixel 4 and DPDD tables do
    not). Coarse 0.5-px grid within +-``max_shift`` px, then refined around the best. Both images
    lose a ``margin`` (default ``ceil(max_shift) + 8`` px) so wrapped borders never count.

    Returns:
        (psnr in dB, (dx, dy) px by which ``pred``'s content was moved).
    """
    p, g = _pair(pred, gt)
    m = int(math.ceil(max_shift)) + 8 if margin is None else int(margin)
    core = (..., slice(m, p.shape[-2] - m), slice(m, p.shape[-1] - m))

    def error(dx: float, dy: float) -> float:
        return mse(fourier_shift(p, dx, dy)[core], g[core])

    coarse = np.arange(-max_shift, max_shift + 1e-9, 0.5)
    _, dx, dy = min((error(dx, dy), dx, dy) for dx in coarse for dy in coarse)
    fine = np.arange(-0.375, 0.376, 0.125)
    _, dx, dy = min((error(dx + a, dy + b), dx + a, dy + b) for a in fine for b in fine)  # a = b = 0 included
    return psnr(fourier_shift(p, dx, dy)[core], g[core]), (float(dx), float(dy))
