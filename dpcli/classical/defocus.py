"""Classical (training-free) DP defocus map from the left/right kernel symmetry of BaMBNet (002).

For a locally constant radius r, ``left = x * K_L(r)`` and ``right = x * K_R(r)``, so
``left * K_R(r) = right * K_L(r)`` (002 Eq. 5-6). For every candidate signed radius we measure
this residual on horizontal derivatives (only x-structure carries DP disparity), smooth it
(002: Gaussian-smoothed residual) and normalise it by the local energy of both reblurred views
(the raw residual shrinks for ANY large r because reblurring flattens texture). The per-pixel
argmin is refined with a parabola through its neighbours; a confidence map combines texture
energy and cost distinctiveness; an edge-aware confidence-weighted guided filter on the combined
image regularises the map and fills textureless regions from confident neighbours.

All candidates are evaluated with one FFT of each view and one inverse FFT per view and radius.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.arrays import as_float, to_numpy
from dpcli.classical.filters import upsample, weighted_guided_coefficients
from dpcli.optics import dp_kernels, srgb_to_linear, translating_disk_kernels
from dpcli.optics.conv import fast_len
from dpcli.optics.fourier import kernel_otf
from dpcli.optics.windows import box_mean


@dataclass
class DefocusConfig:
    """Knobs of :func:`estimate_defocus_classical` (defaults tuned on synthetic + Pixel 4 scenes)."""

    min_radius: float = -12.0  # px at full resolution, signed (docs/CONVENTIONS.md)
    max_radius: float = 12.0
    step: float = 0.25  # candidate spacing in px at working resolution
    kernel: str = "rdpd"  # rdpd (Butterworth DP kernels) | disk (002's translating disk)
    downscale: int = 0  # 0 = auto: |r| <= ~4 px at working res, short side >= 256 px (Pixel 4: 3)
    window: int = 7  # residual smoothing radius (px at working resolution)
    noise: float | None = None  # noise std of the views (texture threshold); None = estimate (Immerkaer)
    guide_radius: int = 16  # edge-aware regularisation window (px, full resolution)
    guide_eps: float = 1e-3  # guided-filter eps (guide = sqrt of the combined image)
    fill_radius: int = 64  # how far confident values propagate into textureless areas
    trust: float = 0.3  # confidence above which the raw estimate is kept before smoothing
    distinct_power: float = 1.0  # weight of the cost-minimum distinctness in the confidence


def _grey(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = as_float(x)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"expected a view of shape (C, H, W) or (H, W), got {tuple(t.shape)}")
    return t.mean(0, keepdim=True)[None]  # (1, 1, H, W)


def estimate_noise(x: torch.Tensor) -> float:
    """Noise std of a (1, 1, H, W) image from Immerkaer's Laplacian-difference mask, with the
    median instead of the mean of |response| so texture does not count as noise."""
    mask = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=x.dtype)[None, None]
    resp = F.conv2d(x, mask).abs()
    return float(resp.median() / (6 * 0.6745))  # |N(0, 36 s^2)| has median 0.6745 * 6 s


def _candidates(cfg: DefocusConfig, scale: int) -> torch.Tensor:
    lo, hi = cfg.min_radius / scale, cfg.max_radius / scale
    n = int(math.floor((hi - lo) / cfg.step + 1e-6)) + 1
    return lo + cfg.step * torch.arange(n, dtype=torch.float32)


def cost_volume(left: torch.Tensor, right: torch.Tensor, radii: torch.Tensor, cfg: DefocusConfig,
                noise: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised symmetry residual for every candidate radius.

    Args:
        left, right: (1, 1, H, W) grey linear views at working resolution.
        radii: (R,) signed candidate radii (working px).
        noise: noise std of the views at this resolution (textureless pixels get no opinion).

    Returns:
        cost (R, H, W) in [0, 1] (0 = perfect left/right consistency) and texture energy (H, W).
    """
    h, w = left.shape[-2:]
    kmax = 2 * int(math.ceil(float(radii.abs().max()))) + 3
    pad = kmax // 2 + cfg.window + 2
    size = (fast_len(h + 2 * pad), fast_len(w + 2 * pad))

    def spectrum(x: torch.Tensor) -> torch.Tensor:
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")[0, 0]
        dx = xp[:, 1:] - xp[:, :-1]  # horizontal derivative: the DP disparity axis
        return torch.fft.rfft2(dx, s=size)

    fl, fr = spectrum(left), spectrum(right)
    kern_fn = translating_disk_kernels if cfg.kernel == "disk" else dp_kernels
    kl_all, kr_all = kern_fn(radii, size=kmax)
    floor = 2 * noise ** 2  # derivative noise energy
    costs, energy = [], None
    for chunk in torch.split(torch.arange(len(radii)), 6):  # bounded memory, few FFT calls
        a = torch.fft.irfft2(fl * kernel_otf(kr_all[chunk], size), s=size)[:, pad:pad + h, pad:pad + w]
        b = torch.fft.irfft2(fr * kernel_otf(kl_all[chunk], size), s=size)[:, pad:pad + h, pad:pad + w]
        sums = box_mean(torch.stack([(a - b) ** 2, a * a + b * b], dim=1), cfg.window)
        costs.append(sums[:, 0] / (sums[:, 1] + floor))
        chunk_energy = sums[:, 1].amax(0)
        energy = chunk_energy if energy is None else torch.maximum(energy, chunk_energy)
    return torch.cat(costs), energy


def _subpixel_argmin(cost: torch.Tensor, radii: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel argmin with parabolic refinement -> (radius (H, W), min cost (H, W))."""
    r = cost.shape[0]
    k = cost.argmin(0)
    km, kp = (k - 1).clamp(min=0), (k + 1).clamp(max=r - 1)
    c0 = cost.gather(0, k[None])[0]
    cm, cp = cost.gather(0, km[None])[0], cost.gather(0, kp[None])[0]
    curv = cm - 2 * c0 + cp
    delta = torch.where(curv > 1e-12, (cm - cp) / (2 * curv), torch.zeros_like(c0)).clamp(-0.5, 0.5)
    delta = torch.where((k == 0) | (k == r - 1), torch.zeros_like(delta), delta)
    step = float(radii[1] - radii[0]) if r > 1 else 0.0
    return radii[k] + delta * step, c0


def estimate_defocus_classical(left, right, *, config: DefocusConfig | None = None, srgb: bool = False,
                               return_raw: bool = False, **overrides):
    """Signed defocus map (px, docs/CONVENTIONS.md) and confidence from a DP pair, no training.

    Args:
        left, right: (C, H, W) or (H, W) views in [0, 1], numpy or torch (grey is used).
        config: :class:`DefocusConfig`; keyword ``overrides`` replace single fields
            (e.g. ``min_radius=0, max_radius=10`` for a front-focused phone scene).
        srgb: inputs are sRGB-encoded (DPDD, JPEG): linearise first (blur is linear-light physics).
        return_raw: also return the unregularised per-pixel estimate (dict of extras).

    Returns:
        (radius, confidence): float32 (H, W) each, numpy if ``left`` was numpy else torch;
        confidence in [0, 1] (0 where texture cannot tell the radius).
    """
    cfg = config or DefocusConfig()
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise TypeError(f"unknown option {key!r} for estimate_defocus_classical")
        cfg = DefocusConfig(**{**cfg.__dict__, key: value})
    as_numpy = not isinstance(left, torch.Tensor)
    gl, gr = _grey(left), _grey(right)
    if gl.shape != gr.shape:
        raise ValueError(f"left and right differ in size: {tuple(gl.shape)} vs {tuple(gr.shape)}")
    if srgb:
        gl, gr = srgb_to_linear(gl.clamp(0, 1)), srgb_to_linear(gr.clamp(0, 1))
    h, w = gl.shape[-2:]
    rmax = max(abs(cfg.min_radius), abs(cfg.max_radius))
    # auto: |r| <= ~4 px at working resolution, but keep >= ~256 px on the short side
    scale = cfg.downscale or max(1, min(int(round(rmax / 4.0)), min(h, w) // 256))
    wl, wr = (F.avg_pool2d(gl, scale), F.avg_pool2d(gr, scale)) if scale > 1 else (gl, gr)
    radii = _candidates(cfg, scale)
    # noise at working resolution; floored at 16-bit quantisation so noiseless data keep a threshold
    noise = max(estimate_noise(wl), 1.0 / 65535) if cfg.noise is None else cfg.noise / scale
    with torch.no_grad():
        cost, energy = cost_volume(wl, wr, radii, cfg, noise)
        raw, cmin = _subpixel_argmin(cost, radii)
        raw = raw * scale  # back to full-resolution px
        # confidence: enough texture (vs noise) and a distinct minimum (vs the mean cost)
        floor = 2 * noise ** 2
        texture = energy / (energy + 10 * floor)
        distinct = ((cost.mean(0) - cmin) / cost.mean(0).clamp_min(1e-12)).clamp(0, 1)
        conf = (texture * distinct ** cfg.distinct_power).clamp(0, 1)
        combined = (gl + gr) / 2
        radius = regularise(raw, conf, combined, scale, cfg)
        raw_full = upsample(raw[None, None], (h, w), scale)[0, 0]
        conf = upsample(conf[None, None], (h, w), scale)[0, 0]
        raw = raw_full
    out = (radius, conf)
    if as_numpy:
        out = tuple(to_numpy(o) for o in out)
    if return_raw:
        extra = {"raw": raw.numpy() if as_numpy else raw, "radii": radii * scale, "scale": scale}
        return (*out, extra)
    return out


def regularise(raw: torch.Tensor, conf: torch.Tensor, combined: torch.Tensor, scale: int,
               cfg: DefocusConfig) -> torch.Tensor:
    """Edge-aware, confidence-weighted smoothing of a raw radius map.

    Args:
        raw, conf: (h, w) at working resolution; combined: (1, 1, H, W) full-resolution guide.

    1) confident values spread into textureless regions (large confidence-weighted mean);
    2) a confidence-weighted guided filter on sqrt(combined) (perceptual contrast for linear data)
       keeps depth edges where the image has edges; its linear coefficients are computed at
       working resolution and applied to the full-resolution guide (fast guided filter).
    Returns (H, W).
    """
    w = conf[None, None]
    r = raw[None, None]
    fr = max(1, cfg.fill_radius // scale)
    support = box_mean(w, fr)
    fill = box_mean(w * r, fr) / support.clamp_min(1e-8)
    glob = (w * r).sum() / w.sum().clamp_min(1e-8)  # nothing confident nearby: global mean
    fill = torch.where(support > 1e-6, fill, glob)
    # even a modest confidence beats propagated values: only near-blind pixels are filled
    trust = (w / cfg.trust).clamp(0, 1)
    mixed = trust * r + (1 - trust) * fill
    guide_full = combined.clamp_min(0).sqrt()
    guide = F.avg_pool2d(guide_full, scale) if scale > 1 else guide_full
    a, b = weighted_guided_coefficients(guide, mixed, 0.02 + w, max(1, cfg.guide_radius // scale), cfg.guide_eps)
    size = tuple(guide_full.shape[-2:])
    return (upsample(a, size, scale) * guide_full + upsample(b, size, scale))[0, 0].float()
