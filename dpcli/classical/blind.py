"""Single-image blind deconvolution of uniform defocus blur: the disc radius read off the photo's
own power spectrum, with a confidence, then a deconvolution with a total-variation prior in linear light.

A disc of radius r multiplies the spectrum by its OTF, whose radial profile dips to zero at
f = 0.61 / r, 1.12 / r, ... cycles/px; a natural photo's radially averaged log power is close to
a straight line in log f. :func:`estimate_disc_radius` fits ``a + b log f + log|OTF_r(f)|^2`` for
each candidate radius and keeps the best; its confidence is how much better that fit is than the
no-blur fit (the ratio of residuals). Soft content, bokeh, noise and JPEG blocking change the
slope or the floor of the spectrum, not the dips at the right places, so they give a confidence
near 1, and :func:`deblur_single_classical` then returns the photo unchanged: it acts only on
blur it has measured. (Ours, not from the papers; the zeros-of-the-OTF idea is as old as Cannon
1976.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from dpcli.classical.filters import local_range
from dpcli.optics.fourier import gradient_power, kernel_otf, taper_pad
from dpcli.optics.kernels import disk_kernel
from dpcli.timing import stage

__all__ = ["BlindConfig", "BlurEstimate", "radial_log_power", "disc_log_otf", "estimate_disc_radius",
           "tile_uniformity", "wiener_deconvolve", "tv_deconvolve", "deblur_single_classical", "LUMA", "luma"]

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights of linear R, G, B
ROWS = 512  # rows per block where a whole-frame spectrum is windowed and binned (memory, not results)


@dataclass(frozen=True)
class BlindConfig:
    """Settings of the single-image blind deconvolution (chosen on the broad benchmark's tuning half,
    ``benchmarks/bench_broad.py --half tune``).

    radii: candidate disc radii (px); 0 is the no-blur model.
    bins: radial frequency bins over [0, 0.5] cycles/px; band: the (low, high) band fitted.
    confidence: the least residual ratio (no-blur fit / best fit) that counts as measured blur.
    tile, uniformity: the blur must be uniform: on every ``tile`` x ``tile`` part of the photo the
        radius found for the whole fits within ``uniformity`` x the part's own best residual (a
        photo whose blur varies across the frame is left to other methods).
    lam, iterations: weight of the total-variation prior and half-quadratic splitting iterations of
        :func:`tv_deconvolve` (a Wiener filter rings around every edge at the disc's OTF zeros; the
        TV prior does not); guard: the output is kept within the photo's local
        range over ceil(r) + ``guard`` px (a deblurred edge stays between its two sides; a ringing
        one does not); 0 turns the guard off.
    """

    radii: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0)
    bins: int = 64
    band: tuple[float, float] = (0.02, 0.48)
    confidence: float = 2.0
    tile: int = 128
    uniformity: float = 1.3
    lam: float = 0.0005
    iterations: int = 8
    guard: int = 1


@dataclass
class BlurEstimate:
    """What :func:`estimate_disc_radius` measured: ``radius`` (px, 0 = no blur found),
    ``confidence`` (>= 1) and each candidate's fit residual."""

    radius: float
    confidence: float
    residuals: dict[float, float] = field(default_factory=dict)
    uniformity: float = 1.0  # the worst tile's residual at ``radius`` over its own best (1 = uniform)


def radial_log_power(luma: torch.Tensor, bins: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged log power spectrum of (H, W) images (mean removed, Hann-windowed). The
    window and the frequency grid are applied in blocks of :data:`ROWS` rows, and the spectrum is
    squared and logged in place, so a 24 MP photo needs its float64 image and spectrum, not six
    frames of temporaries.

    Args:
        luma: (..., H, W) real.
    Returns:
        (bin centres (bins,) in cycles/px over [0, 0.5], mean log power (..., bins)).
    """
    h, w = luma.shape[-2:]
    wy = torch.hann_window(h, periodic=False, dtype=luma.dtype)
    wx = torch.hann_window(w, periodic=False, dtype=luma.dtype)
    x = luma - luma.mean(dim=(-2, -1), keepdim=True)
    dtype = luma.dtype
    del luma  # a caller's temporary (estimate_disc_radius passes one) is freed before the spectrum
    for i in range(0, h, ROWS):  # the separable window, one block of rows at a time
        x[..., i:i + ROWS, :] *= wy[i:i + ROWS, None] * wx[None, :]
    power = torch.fft.rfft2(x).abs()  # |spectrum|: the complex spectrum is freed here
    del x
    log_power = power.square_().add_(1e-20).log_()
    fy = torch.fft.fftfreq(h, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=dtype)[None, :]
    return _radial_mean(log_power, fy, fx, bins)


def _radial_mean(values: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor, bins: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of (..., h, w) ``values`` per radial frequency bin of the grid |(fy, fx)| ((h, 1) and
    (1, w) frequencies), read :data:`ROWS` rows at a time."""
    edges = torch.linspace(0.0, 0.5, bins + 1, dtype=fy.dtype)
    lead = values.shape[:-2]
    sums = torch.zeros(*lead, bins + 1, dtype=values.dtype)
    count = torch.zeros(bins + 1, dtype=values.dtype)
    for i in range(0, values.shape[-2], ROWS):
        idx = (torch.bucketize(torch.sqrt(fy[i:i + ROWS] ** 2 + fx**2).flatten(), edges) - 1).clamp(0, bins)
        sums.index_add_(-1, idx, values[..., i:i + ROWS, :].reshape(*lead, -1))
        count.index_add_(0, idx, torch.ones_like(idx, dtype=values.dtype))
    return (edges[:-1] + edges[1:]) / 2, sums[..., :bins] / count[:bins].clamp_min(1)


@lru_cache(maxsize=64)
def _disc_profile(radius: float, bins: int) -> torch.Tensor:
    size = 129
    otf = kernel_otf(disk_kernel(torch.tensor([radius]), size=size).double(), (size, size))[0]
    fy = torch.fft.fftfreq(size, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(size, dtype=torch.float64)[None, :]
    # 1e-4: a zero of the OTF counts as 40 dB down, the depth a real photo's noise floor leaves it
    return _radial_mean(torch.log(otf.abs() ** 2 + 1e-4), fy, fx, bins)[1]


def disc_log_otf(radius: float, bins: int = 64) -> torch.Tensor:
    """Radial mean of log(|OTF|^2 + 1e-4) of a disc of ``radius`` px, per bin as
    :func:`radial_log_power` bins: (bins,) float64; zeros for radius 0."""
    if radius <= 0:
        return torch.zeros(bins, dtype=torch.float64)
    return _disc_profile(float(radius), int(bins)).clone()


def estimate_disc_radius(linear: torch.Tensor, config: BlindConfig | None = None) -> BlurEstimate:
    """The uniform disc blur of a photo, from its spectrum (module docstring).

    Args:
        linear: (C, H, W) or (1, C, H, W) linear-light image, C = 1 or 3.
    Returns:
        :class:`BlurEstimate`; radius 0 where no candidate fits better than no blur by
        ``config.confidence``.
    """
    cfg = config or BlindConfig()
    freq, logp = radial_log_power(luma(linear), cfg.bins)
    sel = (freq > cfg.band[0]) & (freq < cfg.band[1])
    design = torch.stack([torch.ones(int(sel.sum()), dtype=torch.float64), torch.log(freq[sel])], 1)
    residuals = {}
    for r in cfg.radii:
        target = (logp - disc_log_otf(r, cfg.bins))[sel][:, None]
        coef = torch.linalg.lstsq(design, target).solution
        residuals[r] = float(((target - design @ coef) ** 2).mean())
    best = min(residuals, key=residuals.get)
    confidence = residuals[cfg.radii[0]] / max(residuals[best], 1e-30)
    return BlurEstimate(best if confidence >= cfg.confidence else 0.0, confidence, residuals)


def luma(linear: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(C, H, W) or (1, C, H, W) linear -> (H, W) luma in ``dtype`` (Rec. 709 weights; C = 1 as it is)."""
    x = linear.reshape(-1, *linear.shape[-2:])
    if x.shape[0] == 1:
        return x[0].to(dtype)
    return sum(w * x[i].to(dtype) for i, w in enumerate(LUMA))  # plane by plane: no converted copy of all three


def _detail(luma: torch.Tensor) -> float:
    """Standard deviation of the 4-neighbour Laplacian of an (H, W) image (white noise of std s
    gives sqrt(20) s)."""
    lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    return float(lap.std())


def tile_uniformity(linear: torch.Tensor, radius: float, config: BlindConfig | None = None) -> float:
    """How far the photo's parts disagree with one radius: the largest, over ``config.tile``-px
    tiles on a grid (at most 8 x 8, evenly spread), of the tile's fit residual at ``radius`` over its
    best residual among the candidates (1.0: every tile agrees). A tile counts where it finds a
    blur with ``config.confidence``, or finds none while its fine detail rises above the photo's
    noise (Laplacian over 3x what its noise alone gives); sky or a bare wall says nothing.
    (C, H, W) linear -> float."""
    from dpcli.classical.defocus import estimate_noise

    cfg = config or BlindConfig()
    h, w = linear.shape[-2:]
    t = cfg.tile
    if min(h, w) < 2 * t:
        return 1.0
    lum = luma(linear)
    floor = 3 * math.sqrt(20) * estimate_noise(lum[None, None].float())
    ys = torch.linspace(0, h - t, min(8, h // t)).round().long().tolist()
    xs = torch.linspace(0, w - t, min(8, w // t)).round().long().tolist()
    worst = 1.0
    for y in ys:
        for x in xs:
            res = estimate_disc_radius(linear[..., y:y + t, x:x + t], cfg).residuals
            best = min(res, key=res.get)
            if best == 0 and _detail(lum[y:y + t, x:x + t]) <= floor:
                continue  # no blur found, nor the detail that would show there is none
            if best > 0 and res[0] < cfg.confidence * res[best]:
                continue  # a blur, but not one it can be sure of
            worst = max(worst, res[radius] / max(res[best], 1e-30))
    return worst


def _spectra(linear: torch.Tensor, kernel: torch.Tensor):
    """The image on a tapered FFT padding (no wrap-around at the borders), its grid, the kernel's
    OTF and the image's spectrum."""
    padded = taper_pad(linear, kernel.shape[-1] // 2 + 8)
    size = tuple(padded.data.shape[-2:])
    return padded, size, kernel_otf(kernel.to(linear.dtype), size), torch.fft.rfft2(padded.data)


def wiener_deconvolve(linear: torch.Tensor, kernel: torch.Tensor, lam: float) -> torch.Tensor:
    """Regularised least-squares deconvolution with a gradient prior,
    X = conj(K) Y / (|K|^2 + lam |D|^2), on a tapered padding (no wrap-around at the borders).

    Args:
        linear: (N, C, H, W) linear image; kernel: (k, k) centred kernel summing to 1.
    Returns:
        (N, C, H, W), not clamped.
    """
    padded, size, otf, spec_y = _spectra(linear, kernel)
    spec = spec_y * otf.conj() / (otf.abs() ** 2 + lam * gradient_power(size, dtype=linear.dtype))
    return padded.crop(torch.fft.irfft2(spec, s=size))


def tv_deconvolve(linear: torch.Tensor, kernel: torch.Tensor, lam: float, iterations: int = 8,
                  beta: float = 0.01, rate: float = 2.0) -> torch.Tensor:
    """Deconvolution with a total-variation prior, min_x ||k * x - y||^2 + lam |grad x|_1, by
    half-quadratic splitting (Krishnan & Fergus 2009 with alpha = 1): alternately shrink the
    gradients (soft threshold lam / beta) and solve the quadratic step in closed form by FFT,
    beta doubling each time. Same padding as :func:`wiener_deconvolve`.

    Args:
        linear: (N, C, H, W) linear image; kernel: (k, k) centred kernel summing to 1.
    Returns:
        (N, C, H, W), not clamped.
    """
    padded, size, otf, spec_y = _spectra(linear, kernel)
    diffs = torch.zeros(2, *size, dtype=linear.dtype)
    diffs[0, 0, 0] = diffs[1, 0, 0] = -1.0
    diffs[0, 0, 1] = diffs[1, 1, 0] = 1.0  # horizontal and vertical differences
    grad = torch.fft.rfft2(diffs)  # (2, nh, nw')
    data_term, blur_power = otf.conj() * spec_y, otf.abs() ** 2
    grad_power = (grad.abs() ** 2).sum(0)
    x = padded.data
    for _ in range(iterations):
        g = torch.fft.irfft2(grad * torch.fft.rfft2(x)[..., None, :, :], s=size)  # (N, C, 2, nh, nw)
        w = torch.sign(g) * (g.abs() - lam / beta).clamp(min=0)
        num = data_term + beta * (grad.conj() * torch.fft.rfft2(w)).sum(-3)
        x = torch.fft.irfft2(num / (blur_power + beta * grad_power), s=size)
        beta *= rate
    return padded.crop(x)


def deblur_single_classical(linear: torch.Tensor, config: BlindConfig | None = None
                            ) -> tuple[torch.Tensor, BlurEstimate]:
    """A photo deconvolved by the uniform disc blur it measures, or returned as it is (the same
    tensor) where it measures none or the blur varies across the frame (:func:`tile_uniformity`).
    (C, H, W) linear in [0, 1] -> ((C, H, W) linear in [0, 1], the estimate)."""
    cfg = config or BlindConfig()
    with stage("blur estimate"):
        estimate = estimate_disc_radius(linear, cfg)
        if estimate.radius > 0:
            estimate.uniformity = tile_uniformity(linear, estimate.radius, cfg)
    if estimate.radius <= 0 or estimate.uniformity > cfg.uniformity:
        return linear, estimate  # the very input: the caller gets its own pixels back
    with stage("deconvolution"):
        x = linear[None].float()
        out = tv_deconvolve(x, disk_kernel(torch.tensor([estimate.radius]))[0], cfg.lam, cfg.iterations)
        if cfg.guard > 0:
            lo, hi = local_range(x, int(math.ceil(estimate.radius)) + cfg.guard)
            out = torch.minimum(torch.maximum(out, lo), hi)
    return out[0].clamp(0, 1), estimate
