"""Training-free DP deblurring: joint left/right regularised (Wiener/Tikhonov) deconvolution in
the Fourier domain, per patch, with the kernel of each patch chosen blindly by left/right reblur
consistency (002 Eq. 5: ``left * K_R = right * K_L`` for the true kernel pair), and the patch
results blended with bilinear (tent) weights so the output has no seams.

Parametric kernels (default ``mode="levels"``): the classical defocus map is estimated, the whole
image is deconvolved once per signed radius level and the results are blended per pixel by the map
(:func:`wiener_levels`); this follows occlusion boundaries and both signs, which one kernel per
patch cannot (bundled examples: -1.8 / -0.7 dB vs the input with patches, +1.7 / +1.8 dB with levels).

Kernels: measured per-patch DP kernels (Pixel 4 calibration format, re-centred, scaled by a
per-patch factor as in Xin et al.) or the parametric RDPD kernels of ``dpcli.optics`` at a per-patch
radius. The estimate for a kernel pair (K_L, K_R) and views (L, R) is

    X = (conj(K_L) L + conj(K_R) R) / (|K_L|^2 + |K_R|^2 + lambda |G|^2)

with G the gradient operator (|G|^2 = |D_x|^2 + |D_y|^2): a joint Tikhonov-gradient (Wiener with a
1/f^2 image prior) solution, exact per patch and one FFT pair per patch
(:func:`dpcli.optics.fourier.wiener_joint`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from dpcli.arrays import as_float, to_numpy
from dpcli.classical.filters import local_range, range_excess
from dpcli.optics import dp_kernels, kernel_grid_roi, kernel_size_for, linear_to_srgb, scale_kernels, srgb_to_linear
from dpcli.optics.conv import fast_len, pad_image
from dpcli.optics.fourier import gradient_power, kernel_otf, wiener_joint
from dpcli.optics.windows import box_mean, tent_weights


def _prior_power(prior: str, size: tuple[int, int]) -> torch.Tensor:
    """|P|^2 of the named prior on an FFT grid: "gradient" (Tikhonov-gradient) | "identity"."""
    return gradient_power(size) if prior == "gradient" else torch.ones(())


@dataclass
class DeconvConfig:
    """Knobs of :func:`deblur_pair_classical`."""

    lam: float = 0.1  # regularisation weight (strong: ringing costs more than residual blur)
    prior: str = "gradient"  # gradient | identity
    patch: int = 168  # patch size (px) for parametric kernels; measured: roi size / kernel grid
    margin: int = 64  # context around each patch tile (px)
    scales: tuple[float, ...] = tuple(np.round(np.arange(0.0, 2.41, 0.2), 2))  # measured kernels
    radii: tuple[float, ...] = tuple(np.round(np.arange(-12, 12.01, 1.0), 2))  # parametric kernels
    refine: bool = True  # after the coarse search, try half steps either side of the best
    use_map: bool = True  # parametric: start each patch from the classical defocus map (fast)
    map_window: float = 1.0  # ... and search only +- this many px around the patch's map radius
    extend: bool = True  # deblur outside the ROI too (nearest kernels); False: combined image there
    mode: str = "levels"  # parametric kernels: levels (per-pixel blend of per-radius results) | patches
    level_step: float = 1.0  # levels mode: spacing of the signed radius levels (px)
    level_lam: float = 0.3  # levels mode: lam (stronger: ringing of wrong levels leaks across edges)
    # levels mode, ringing (wiener_levels): identity share of the prior; the guard's excess scale
    # (sRGB), window radius (px; 0: per pixel) and stronger regularisation. Synthetic examples /
    # Canon dev / Pixel 4 dev, artefact share (dpcli.metrics.artefacts) 0.101 / 0.040 / 0.039
    # without, 0.007 / 0.019 / 0.013 with; gain +1.84 / +0.38 / +0.60 dB without, +2.07 / +0.48 /
    # +0.73 with; a 7 x 7 window: 0.010 / 0.024 / 0.013 at +1.35 / +0.40 / +0.74 (docs/benchmarks.md)
    level_floor: float = 0.2
    level_guard: float = 0.01
    guard_window: int = 0
    guard_strong: float = 10.0


def joint_wiener(left: torch.Tensor, right: torch.Tensor, k_left: torch.Tensor, k_right: torch.Tensor,
                 lam: float = 0.1, prior: str = "gradient") -> torch.Tensor:
    """Joint left/right deconvolution of one tile (reflect-padded for the FFT).

    Args:
        left, right: (C, H, W) views; k_left, k_right: (k, k) kernels summing to 1.

    Returns:
        (C, H, W) latent sharp image.
    """
    c, h, w = left.shape
    pad = k_left.shape[-1] // 2 + 8
    size = (fast_len(h + 2 * pad), fast_len(w + 2 * pad))

    def prep(x: torch.Tensor) -> torch.Tensor:
        # reflect up to the whole FFT size: a zero band would be a step no blur explains (ringing)
        bottom, right_ = size[0] - h - pad, size[1] - w - pad
        xp = pad_image(x[None].float(), pad, bottom, pad, right_, padding="reflect")[0]
        return torch.fft.rfft2(xp)

    kl, kr = kernel_otf(torch.stack([k_left, k_right]).float(), size)
    spec = wiener_joint(prep(left), prep(right), kl, kr, lam, _prior_power(prior, size))
    out = torch.fft.irfft2(spec, s=size)[:, pad:pad + h, pad:pad + w]
    return out.to(left.dtype)


def wiener_levels(left: torch.Tensor, right: torch.Tensor, radius: torch.Tensor, step: float = 1.0,
                  lam: float = 0.3, prior: str = "gradient", anchor: bool = True, floor: float = 0.0,
                  guard: float = 0.0, guard_window: int = 3, guard_strong: float = 0.0) -> torch.Tensor:
    """Spatially varying joint deconvolution: one whole-image joint Wiener estimate per signed
    radius level (``step`` apart, covering the map's range), blended per pixel with hat weights of
    the radius map. Unlike one kernel per patch this follows occlusion boundaries and both signs.

    Ringing guard (``guard`` > 0), a per-pixel choice between estimates of a level: a Wiener
    filter for radius r amplifies the frequencies near the zeros of r's OTF; where the views do
    not follow the model there (another radius, a tone curve that is not sRGB, a kernel of another
    shape) it invents long stripes and arcs, worst in dark regions once shown in sRGB (the
    synthetic examples: +1.8 dB with stripes across scene_b). Each level's estimate is checked
    against the combined view's local range over ``ceil(|r|) + 2`` px in sRGB: its excess beyond
    2/255 (max over channels, ``guard_window`` px mean) sets ``clean = 1 - excess / guard``; the
    level keeps ``clean`` of its estimate and takes the rest from the same level solved with
    ``guard_strong`` x the regularisation (itself checked the same way), then from the combined
    view. A correct deconvolution of a blurred edge stays within that range; a ringing one
    leaves it.

    Args:
        left, right: (C, H, W) linear views; radius: (H, W) signed radius map (px).
        lam, prior: regularisation weight and prior (|P|^2); ``floor`` adds an identity share
            (floor x lam) pulling every frequency toward the prior mean (anchor: the combined view).
        guard, guard_window, guard_strong: the ringing guard above (0: off).

    Returns:
        (C, H, W) latent sharp image.
    """
    c, h, w = left.shape
    lo = math.floor(float(radius.min()) / step) * step
    hi = math.ceil(float(radius.max()) / step) * step
    levels = torch.arange(lo, hi + step / 2, step, dtype=torch.float32)
    ksize = kernel_size_for(levels) + 2
    pad = ksize // 2 + 8
    size = (fast_len(h + 2 * pad), fast_len(w + 2 * pad))
    bottom, right_ = size[0] - h - pad, size[1] - w - pad
    spec = torch.fft.rfft2(pad_image(torch.stack([left, right]).float(), pad, bottom, pad, right_,
                                     padding="reflect"))  # (2, C, H', W'//2+1), once for all levels
    reg = _prior_power(prior, size) + floor
    # anchor: prior mean = the combined view, so a level near r = 0 returns its input unchanged
    mean = (spec[0] + spec[1]) / 2 if anchor else None
    out = torch.zeros(c, h, w, dtype=torch.float32)
    combined = (left + right) / 2
    shown = linear_to_srgb(combined.clamp(0, 1))[None] if guard > 0 else None
    for r in levels:
        wt = (1 - (radius - r).abs() / step).clamp_min(0)
        if not bool(wt.gt(0).any()):
            continue
        kl, kr = dp_kernels(r.view(1), size=ksize)
        fk = kernel_otf(torch.cat([kl, kr]).float(), size)

        def solve(factor: float) -> torch.Tensor:
            spec_x = wiener_joint(spec[0], spec[1], fk[0], fk[1], lam * factor, reg, mean)
            return torch.fft.irfft2(spec_x, s=size)[:, pad:pad + h, pad:pad + w]

        est = solve(1.0)
        if guard > 0:
            fallback = combined
            if guard_strong > 1:  # the same level, more regularised, before the input itself
                strong = solve(guard_strong)
                c2 = _clean(strong, shown, r, guard, guard_window)
                fallback = strong * c2 + combined * (1 - c2)
            c1 = _clean(est, shown, r, guard, guard_window)
            est = est * c1 + fallback * (1 - c1)
        out += est * wt
    return out


def _clean(est: torch.Tensor, shown: torch.Tensor, r: torch.Tensor, guard: float, window: int) -> torch.Tensor:
    """(H, W) in [0, 1]: 1 where a level's (C, H, W) linear estimate stays within the (1, C, H, W)
    sRGB combined view's local range over ceil(|r|) + 2 px (+-2/255), 0 where its local mean excess
    reaches ``guard``."""
    lo_, hi_ = local_range(shown, int(math.ceil(abs(float(r)))) + 2)
    x = linear_to_srgb(est.clamp(0, 1))[None]
    return (1 - box_mean(range_excess(x, lo_, hi_), window) / guard).clamp(0, 1)[0]


def lr_consistency(left: torch.Tensor, right: torch.Tensor, k_left: torch.Tensor, k_right: torch.Tensor,
                   border: int) -> torch.Tensor:
    """Normalised left/right reblur residual for N candidate kernel pairs (002 Eq. 5).

    Args:
        left, right: (C, H, W) tile; k_left, k_right: (N, k, k); border: px ignored at the edges.

    Returns:
        (N,) ||dx(L * K_R - R * K_L)||^2 / (||dx(L * K_R)||^2 + ||dx(R * K_L)||^2) on the interior.
    """
    _, h, w = left.shape
    size = (fast_len(h), fast_len(w))
    fl = torch.fft.rfft2(left.float().mean(0), s=size)
    fr = torch.fft.rfft2(right.float().mean(0), s=size)
    a = torch.fft.irfft2(fl * kernel_otf(k_right.float(), size), s=size)
    b = torch.fft.irfft2(fr * kernel_otf(k_left.float(), size), s=size)
    sl = (slice(None), slice(border, h - border), slice(border + 1, w - border))
    sr = (slice(None), slice(border, h - border), slice(border, w - border - 1))
    da = a[sl] - a[sr]
    db = b[sl] - b[sr]
    num = ((da - db) ** 2).sum((-2, -1))
    den = (da ** 2 + db ** 2).sum((-2, -1)) + 1e-12
    return num / den


def load_kernels_dir(path, swap_lr: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Measured kernels in the Pixel 4 calibration format: a folder with
    ``blur_kernels_left.npy`` / ``blur_kernels_right.npy`` (or a ``calibration/`` subfolder),
    re-centred; ``swap_lr`` exchanges them (Pixel 4: the file named left is our right view)."""
    from pathlib import Path

    from dpcli.errors import InputError
    from dpcli.optics import load_measured_kernels

    root = Path(path)
    if (root / "calibration").is_dir() and not (root / "blur_kernels_left.npy").exists():
        root = root / "calibration"
    if not root.is_dir():
        raise InputError("expected a folder with blur_kernels_left.npy and blur_kernels_right.npy", path)
    kl, kr = load_measured_kernels(root / "blur_kernels_left.npy", root / "blur_kernels_right.npy")
    return (kr, kl) if swap_lr else (kl, kr)


def deblur_pair_classical(left, right, kernels=None, *, config: DeconvConfig | None = None,
                          roi: tuple[int, int, int, int] | None = None, grid: tuple[int, int] | None = None,
                          srgb: bool = False, return_info: bool = False, **overrides):
    """Training-free all-in-focus image from a DP pair (linear-light views).

    Args:
        left, right: (C, H, W) or (H, W) float views (numpy or torch), OUR left/right order.
        kernels: None for parametric RDPD kernels (radius per patch: the classical defocus map's
            median in the patch, refined by left/right consistency within +-``map_window``), or measured
            (left (P, k, k), right (P, k, k)) re-centred kernels on a ``grid`` (rows, cols) of
            patches covering ``roi`` (Pixel 4: (6, 8) over rows 252:1260, cols 336:1680, which is
            the default for a 1512 x 2016 view with 48 kernels); the factor per patch is chosen
            from ``config.scales``. Patches outside the ROI use the nearest calibrated kernel.
        config / overrides: :class:`DeconvConfig` fields (``lam``, ``patch``, ...).
        srgb: the views are sRGB-encoded: linearise, deconvolve, re-encode.
        return_info: also return {"choice": (rows, cols) chosen radius/scale per patch, "patch", starts}.

    Returns:
        (C, H, W) float32 all-in-focus estimate in the units of the views (numpy if input numpy).
    """
    cfg = _with_overrides(config or DeconvConfig(), overrides)
    as_numpy = not isinstance(left, torch.Tensor)
    lt, rt = _linear_views(left, right, srgb)
    c, h, w = lt.shape
    measured = None if kernels is None else tuple(as_float(k) for k in kernels)
    pg = _patch_grid(cfg, h, w, measured, roi, grid)
    choice = np.zeros((len(pg.y_starts), len(pg.x_starts)))
    radius_map = None
    if measured is None and cfg.use_map:
        from dpcli.classical.defocus import estimate_defocus_classical

        radius_map, _ = estimate_defocus_classical(lt, rt, min_radius=min(cfg.radii), max_radius=max(cfg.radii))
        if cfg.mode not in ("levels", "patches"):
            raise ValueError(f"mode must be 'levels' or 'patches', got {cfg.mode!r}")
    if radius_map is not None and cfg.mode == "levels":
        out = _deconvolve_levels(lt, rt, radius_map, cfg, pg, choice)
    else:
        out = _deconvolve_patches(lt, rt, measured, radius_map, cfg, pg, choice)
    if not cfg.extend:  # outside the ROI: the combined image
        inside = torch.zeros(h, w, dtype=torch.bool)
        inside[pg.roi[0]:pg.roi[1], pg.roi[2]:pg.roi[3]] = True
        out = torch.where(inside, out, (lt.double() + rt.double()) / 2)
    result = out.float()
    if srgb:
        result = linear_to_srgb(result.clamp(0, 1))
    if as_numpy:
        result = to_numpy(result)
    if return_info:
        return result, {"choice": choice, "patch": (pg.ph, pg.pw), "y_starts": pg.y_starts, "x_starts": pg.x_starts}
    return result


def _with_overrides(cfg: DeconvConfig, overrides: dict) -> DeconvConfig:
    """``cfg`` with keyword overrides of its fields; an unknown name is a TypeError."""
    if overrides:
        bad = [k for k in overrides if not hasattr(cfg, k)]
        if bad:
            raise TypeError(f"unknown option(s) {bad} for deblur_pair_classical")
        cfg = DeconvConfig(**{**cfg.__dict__, **overrides})
    return cfg


def _linear_views(left, right, srgb: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) float32 linear views of (C, H, W) or (H, W) ones (decoded when ``srgb``)."""
    lt, rt = as_float(left), as_float(right)
    if lt.ndim == 2:
        lt, rt = lt[None], rt[None]
    if srgb:
        lt, rt = srgb_to_linear(lt.clamp(0, 1)), srgb_to_linear(rt.clamp(0, 1))
    if lt.shape != rt.shape:
        raise ValueError(f"left and right differ in size: {tuple(lt.shape)} vs {tuple(rt.shape)}")
    return lt, rt


@dataclass
class _PatchGrid:
    """Patches of (ph, pw) px starting at ``y_starts`` x ``x_starts``, aligned on ``roi`` (row0, row1,
    col0, col1); ``wy`` (rows, H) and ``wx`` (cols, W) their tent weights; ``grid`` (rows, cols) of
    the measured kernels (None for parametric ones)."""

    roi: tuple[int, int, int, int]
    ph: int
    pw: int
    y_starts: list[int]
    x_starts: list[int]
    wy: torch.Tensor
    wx: torch.Tensor
    grid: tuple[int, int] | None


def _patch_grid(cfg: DeconvConfig, h: int, w: int, measured: tuple | None, roi, grid) -> _PatchGrid:
    """The patch grid: the measured kernels' grid over their ROI, else ``cfg.patch`` squares; with
    ``cfg.extend`` extended to cover the whole image, else zero weight outside the ROI."""
    if measured is not None:
        if grid is None:
            grid = (6, 8) if measured[0].shape[0] == 48 else (1, measured[0].shape[0])
        if roi is None:
            roi = kernel_grid_roi(h, w, grid)
        ph, pw = (roi[1] - roi[0]) // grid[0], (roi[3] - roi[2]) // grid[1]
    else:
        roi, ph, pw = roi or (0, h, 0, w), cfg.patch, cfg.patch
    # patch grid aligned on the ROI origin, extended to cover the whole image
    rows0, cols0 = -math.ceil(roi[0] / ph), -math.ceil(roi[2] / pw)
    if cfg.extend:
        y_starts = [roi[0] + i * ph for i in range(rows0, math.ceil((h - roi[0]) / ph))]
        x_starts = [roi[2] + j * pw for j in range(cols0, math.ceil((w - roi[2]) / pw))]
    else:
        y_starts = list(range(roi[0], roi[1] - ph + 1, ph))
        x_starts = list(range(roi[2], roi[3] - pw + 1, pw))
    # tent weights over patch centres (pixels beyond the outer centres take the nearest patch)
    wy = tent_weights(h, y_starts, ph)
    wx = tent_weights(w, x_starts, pw)
    if not cfg.extend:
        wy[:, : roi[0]] = 0
        wy[:, roi[1]:] = 0
        wx[:, : roi[2]] = 0
        wx[:, roi[3]:] = 0
    return _PatchGrid(roi, ph, pw, y_starts, x_starts, wy, wx, grid)


def _map_median(radius_map: torch.Tensor, y0: int, x0: int, pg: _PatchGrid) -> float:
    """Median of the (H, W) defocus map over the patch at (y0, x0) (clipped to the image)."""
    h, w = radius_map.shape[-2:]
    py0, px0 = min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)
    return float(radius_map[py0:max(y0 + pg.ph, py0 + 1), px0:max(x0 + pg.pw, px0 + 1)].median())


def _deconvolve_levels(lt: torch.Tensor, rt: torch.Tensor, radius_map: torch.Tensor, cfg: DeconvConfig,
                       pg: _PatchGrid, choice: np.ndarray) -> torch.Tensor:
    """(C, H, W) float64 :func:`wiener_levels` estimate from the defocus map; ``choice`` gets the
    map's median radius per patch (information only)."""
    out = wiener_levels(lt, rt, radius_map, cfg.level_step, cfg.level_lam, cfg.prior, floor=cfg.level_floor,
                        guard=cfg.level_guard, guard_window=cfg.guard_window, guard_strong=cfg.guard_strong).double()
    for i, y0 in enumerate(pg.y_starts):
        for j, x0 in enumerate(pg.x_starts):
            choice[i, j] = _map_median(radius_map, y0, x0, pg)
    return out


def _deconvolve_patches(lt: torch.Tensor, rt: torch.Tensor, measured: tuple | None, radius_map: torch.Tensor | None,
                        cfg: DeconvConfig, pg: _PatchGrid, choice: np.ndarray) -> torch.Tensor:
    """(C, H, W) float64: every patch (with ``cfg.margin`` px of context) deconvolved with its most
    consistent kernel pair, blended by the tent weights; ``choice`` gets each patch's value."""
    c, h, w = lt.shape
    out = torch.zeros(c, h, w, dtype=torch.float64)
    m = cfg.margin
    memo: dict = {}
    for i, y0 in enumerate(pg.y_starts):
        ry = torch.nonzero(pg.wy[i] > 0).flatten()
        if len(ry) == 0:
            continue
        for j, x0 in enumerate(pg.x_starts):
            rx = torch.nonzero(pg.wx[j] > 0).flatten()
            if len(rx) == 0:
                continue
            # support of this patch's tent, plus context
            ty0, ty1 = max(0, int(ry[0]) - m), min(h, int(ry[-1]) + 1 + m)
            tx0, tx1 = max(0, int(rx[0]) - m), min(w, int(rx[-1]) + 1 + m)
            cands, make = _candidates(y0, x0, pg, cfg, measured, radius_map, memo)
            choice[i, j] = best_value = _most_consistent(lt, rt, y0, x0, pg, cands, make, cfg, measured is not None)
            kb_l, kb_r = make(torch.tensor([best_value], dtype=torch.float32))
            est = joint_wiener(lt[:, ty0:ty1, tx0:tx1], rt[:, ty0:ty1, tx0:tx1], kb_l[0], kb_r[0], cfg.lam, cfg.prior)
            weight = (pg.wy[i, ty0:ty1, None] * pg.wx[j, None, tx0:tx1])
            out[:, ty0:ty1, tx0:tx1] += est.double() * weight
    return out


def _candidates(y0: int, x0: int, pg: _PatchGrid, cfg: DeconvConfig, measured: tuple | None,
                radius_map: torch.Tensor | None, memo: dict) -> tuple[torch.Tensor, Callable]:
    """The candidate values of the patch at (y0, x0) and ``make(values) -> (k_left, k_right)``
    ((N, k, k) each): scales of the patch's measured kernels, radii around the defocus map's, or
    every radius of ``cfg.radii`` (parametric kernels are memoised in ``memo`` across patches)."""
    if measured is not None:
        roi, grid = pg.roi, pg.grid
        gi = min(max((y0 - roi[0]) // pg.ph, 0), grid[0] - 1)
        gj = min(max((x0 - roi[2]) // pg.pw, 0), grid[1] - 1)
        base_l, base_r = measured[0][gi * grid[1] + gj], measured[1][gi * grid[1] + gj]

        def make(values: torch.Tensor):
            n = len(values)
            return (scale_kernels(base_l[None].expand(n, -1, -1), values),
                    scale_kernels(base_r[None].expand(n, -1, -1), values))
        return torch.tensor(cfg.scales, dtype=torch.float32), make
    size = kernel_size_for(torch.tensor(cfg.radii)) + 2
    if radius_map is not None:  # candidates around the defocus map's radius of this patch
        r0 = _map_median(radius_map, y0, x0, pg)
        steps = torch.arange(-cfg.map_window, cfg.map_window + 1e-6, 0.5)

        def make(values: torch.Tensor):
            key = tuple(np.round(values.tolist(), 4))
            if key not in memo:
                memo[key] = dp_kernels(values, size=size)
            return memo[key]
        return torch.clamp(r0 + steps, min(cfg.radii), max(cfg.radii)), make

    def make(values: torch.Tensor):  # same for every patch: memoised
        key = tuple(values.tolist())
        if key not in memo:
            memo[key] = dp_kernels(values, size=size)
        return memo[key]
    return torch.tensor(cfg.radii, dtype=torch.float32), make


def _most_consistent(lt: torch.Tensor, rt: torch.Tensor, y0: int, x0: int, pg: _PatchGrid, cands: torch.Tensor,
                     make: Callable, cfg: DeconvConfig, measured: bool) -> float:
    """The candidate whose kernel pair best explains both views (:func:`lr_consistency`) on the
    patch plus a little context, refined by half steps either side (``cfg.refine``)."""
    h, w = lt.shape[-2:]
    border = make(cands[:1])[0].shape[-1] // 2
    cy0, cy1 = max(0, y0 - 16 - border), min(h, y0 + pg.ph + 16 + border)
    cx0, cx1 = max(0, x0 - 16 - border), min(w, x0 + pg.pw + 16 + border)
    crop_l, crop_r = lt[:, cy0:cy1, cx0:cx1], rt[:, cy0:cy1, cx0:cx1]
    k_l, k_r = make(cands)
    cost = lr_consistency(crop_l, crop_r, k_l, k_r, border)
    best_value, best_cost = float(cands[int(cost.argmin())]), float(cost.min())
    if cfg.refine and len(cands) > 1:
        half = float(cands[1] - cands[0]) / 2
        fine = torch.tensor([best_value - half, best_value + half], dtype=torch.float32)
        if measured:
            fine = fine.clamp_min(0) if min(cfg.scales) >= 0 else fine
        fk_l, fk_r = make(fine)
        fcost = lr_consistency(crop_l, crop_r, fk_l, fk_r, border)
        if float(fcost.min()) < best_cost:
            best_value = float(fine[int(fcost.argmin())])
    return best_value
