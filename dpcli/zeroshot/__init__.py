"""Zero-shot per-scene MPI defocus deblurring of one dual-pixel pair (thesis 004).

Public API: :func:`zeroshot_deblur` (left, right, config) -> :class:`ZeroShotResult`.

Stages (thesis sections 3.1-3.3):
1. latent-map init: every MPI layer deconvolved with its parametric (or measured) DP kernel
   pair, exactly, in the Fourier domain (``init="closed"``) or by the thesis' gradient descent;
2. defocus map: G_D trained on the scene to pick, per pixel, the layer that re-blurs into both
   views (over-operator blending, TV prior);
3. non-uniform kernels: G_F generators per patch grid, G_D fixed, latent map refined jointly
   with an edge-aware smoothness prior.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.errors import InputError
from dpcli.optics import kernel_grid_roi
from dpcli.zeroshot.config import SCHEDULES, ZeroShotConfig, make_config
from dpcli.zeroshot.init import closed_form_layers, closed_form_layers_patched, iterative_layers
from dpcli.zeroshot.kernels import (kernel_size, layer_kernels, layer_radii, measured_layer_kernels,
                                    measured_max_kernels, parametric_max_kernels)
from dpcli.zeroshot.optimize import learn_kernels, residual_weights, train_defocus_net

__all__ = ["ZeroShotConfig", "ZeroShotResult", "make_config", "SCHEDULES", "zeroshot_deblur",
           "horizontal_disparity"]


@dataclass
class ZeroShotResult:
    """Output of :func:`zeroshot_deblur` (numpy arrays).

    Attributes:
        aif: (C, H, W) all-in-focus estimate (linear, same units as the views, not clipped).
        defocus: (H, W) signed blur radius in px (sum_i r_i D_i).
        kernels_left, kernels_right: (S, P, K, K) learned largest kernels per patch of the grid;
            S = 1 (front or back focus) or 2 (front then back).
        layers: (L, C, H, W) stage-1 latent layers if ``keep_layers`` else None.
        weights: (L, H, W) defocus weights D_i from G_D if ``keep_layers`` else None.
        radii: (L,) layer radii in px.
        losses: per-stage loss curves.
        stage_images: AiF after each stage: "init" (stage-1 layers picked per pixel by their local
            reblur residual), "defocus" (after G_D), "kernels" (after G_F; absent when the time
            budget left no time for stage 3).
        timings: seconds per stage and in total.
        info: iterations and stop reasons per stage; ``gd_reblur_ratio`` (G_D's reblur error over
            the stage-1 choice's); ``defocus_source`` ("G_D", or the stage-1 residual choice when
            that ratio exceeds ``gd_max_reblur_ratio`` or the budget stopped G_D in its warm-up) and
            ``output_stage`` (which stage produced ``aif``: "kernels" unless the budget stopped
            G_F before ``min_kernel_iters`` steps).
    """

    aif: np.ndarray
    defocus: np.ndarray
    kernels_left: np.ndarray
    kernels_right: np.ndarray
    layers: np.ndarray | None
    losses: dict[str, list[float]]
    stage_images: dict[str, np.ndarray]
    weights: np.ndarray | None = None
    radii: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _as_tensor(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, np.float32))
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise InputError(f"{name} view must be (C, H, W) with C = 1 or 3, got {tuple(t.shape)}")
    return t


def horizontal_disparity(left: torch.Tensor, right: torch.Tensor, max_shift: int = 12) -> float:
    """Global x shift (px) of the left view relative to the right, by cross-correlating their
    high-passed rows. Positive means left displaced toward +x (positive radii, our convention)."""
    a = left.mean(0)
    b = right.mean(0)
    step = max(1, int(max(a.shape) // 1024))
    a, b = a[::step, :], b[::step, :]
    hp = lambda z: z - F.avg_pool2d(z[None, None], 9, 1, 4, count_include_pad=False)[0, 0]  # noqa: E731
    a, b = hp(a), hp(b)
    m = max_shift
    core_b = b[:, m:-m]
    scores = [float((a[:, m + s : a.shape[1] - m + s] * core_b).mean()) for s in range(-m, m + 1)]
    k = int(np.argmax(scores))
    if 0 < k < 2 * m:  # parabolic sub-pixel peak
        y0, y1, y2 = scores[k - 1], scores[k], scores[k + 1]
        den = y0 - 2 * y1 + y2
        return float(k - m + (0.5 * (y0 - y2) / den if den != 0 else 0.0))
    return float(k - m)


def _blend(weights: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """sum_i D_i X_i (Eq. 7): (L, H, W) x (L, C, H, W) -> (C, H, W), layer by layer (low memory)."""
    out = torch.zeros(latent.shape[1:], dtype=torch.float32, device=latent.device)
    for i in range(latent.shape[0]):
        out += weights[i] * latent[i].float()
    return out


def _reblur_error(weights: torch.Tensor, init, left: torch.Tensor, right: torch.Tensor) -> float:
    """Mean squared error of both views re-blurred through the blended MPI (Eq. 9-10 data term)."""
    el = (_blend(weights, init.blur_left) - left).square().mean()
    er = (_blend(weights, init.blur_right) - right).square().mean()
    return float(el + er)


def nearest_patch(h: int, w: int, grid: tuple[int, int], roi: tuple[int, int, int, int]) -> torch.Tensor:
    """(P,) index of the kernel-grid patch (grid over ``roi``) nearest to the centre of each patch of
    the same grid spread over the whole (h, w) image (stage 3's tiles); identity when roi is all."""
    rows, cols = grid
    r0, r1, c0, c1 = roi
    idx = []
    for i in range(rows):
        for j in range(cols):
            y, x = (i + 0.5) * h / rows, (j + 0.5) * w / cols
            gi = min(max(int((y - r0) // ((r1 - r0) / rows)), 0), rows - 1)
            gj = min(max(int((x - c0) // ((c1 - c0) / cols)), 0), cols - 1)
            idx.append(gi * cols + gj)
    return torch.tensor(idx)


def _resolve_with_kernels(left: torch.Tensor, right: torch.Tensor, kernels: dict[str, torch.Tensor],
                          radii: torch.Tensor, weights: torch.Tensor, rechoose: bool, cfg: ZeroShotConfig,
                          store: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-3 readout (ours): every layer solved again in closed form with the learned per-patch
    kernels (tent-blended like stage 1, so no seams at patch borders) and blended by ``weights``
    (G_D's), or with ``rechoose`` by a fresh per-pixel residual choice on the new layers (when
    the stage-1 choice stood in for G_D). Returns (weights (L, H, W), image (C, H, W))."""
    layers = closed_form_layers_patched(left, right, layer_kernels(kernels, radii), cfg.grid, cfg.lam, store)
    if rechoose:
        weights = residual_weights(left, right, layers.blur_left, layers.blur_right, cfg.choice_windows,
                                   cfg.choice_temperature)
    return weights, _blend(weights, layers.latent)


def zeroshot_deblur(left, right, config: ZeroShotConfig | None = None,
                    measured_kernels: tuple | None = None, progress=None,
                    kernel_roi: tuple[int, int, int, int] | None = None) -> ZeroShotResult:
    """Deblur one DP pair by the zero-shot MPI method.

    Args:
        left, right: (C, H, W) or (H, W) linear views in [0, 1] (numpy or torch), OUR orientation
            (left view displaced toward +x behind the focal plane; swap before calling if not).
        config: :class:`ZeroShotConfig` (default: the fast schedule).
        measured_kernels: optional (left (P, k, k), right (P, k, k)) calibration kernels, already
            in our orientation and re-centred (``dpcli.optics.load_measured_kernels``); P must match
            the grid. The closed-form stage 1 and stage 3 use each patch's own kernels (stage 1
            blends neighbouring patches' solutions bilinearly, and G_D fits those layers); the
            iterative stage 1 uses their mean.
        progress: optional callable(str) told when each stage starts.
        kernel_roi: (row0, row1, col0, col1) the measured kernel grid covers; default
            :func:`dpcli.optics.kernel_grid_roi` (the GT crop of a full Pixel 4 view, else all).

    Returns:
        :class:`ZeroShotResult`.
    """
    cfg = config or ZeroShotConfig()
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    yl, yr = _as_tensor(left, "left"), _as_tensor(right, "right")
    if yl.shape != yr.shape:
        raise InputError(f"left {tuple(yl.shape)} and right {tuple(yr.shape)} views differ in size")
    c, h, w = yl.shape
    if min(h, w) < 32:
        raise InputError(f"image of {h}x{w} px is too small for zero-shot deblurring (>= 32 px)")
    torch.manual_seed(cfg.seed)
    from dpcli.device import autocast, resolve_device

    device = resolve_device(cfg.device)
    yl, yr = yl.to(device), yr.to(device)
    budget = cfg.time_budget
    deadline = (lambda frac: t0 + frac * budget) if budget else (lambda frac: None)
    store = torch.bfloat16 if cfg.precision == "bf16" else torch.float32

    disparity = horizontal_disparity(yl, yr)
    if cfg.focus == "front" and disparity < -0.3 or cfg.focus == "back" and disparity > 0.3:
        warnings.warn(f"the left view is displaced by {disparity:+.2f} px relative to the right, "
                      f"which contradicts focus={cfg.focus!r}: the views are probably swapped "
                      "(pass --swap-lr) or the scene needs --focus both", stacklevel=2)

    radii = layer_radii(cfg.layers, cfg.max_radius, cfg.focus)
    if measured_kernels is not None:
        ml, mr = (torch.as_tensor(np.asarray(k, np.float32)) for k in measured_kernels)
        n_patch = cfg.grid[0] * cfg.grid[1]
        if ml.shape[0] != n_patch:
            raise InputError(f"{ml.shape[0]} measured kernels do not match the {cfg.grid[0]}x"
                             f"{cfg.grid[1]} patch grid ({n_patch})")
        roi = kernel_roi or kernel_grid_roi(h, w, cfg.grid)
        tile_of = nearest_patch(h, w, cfg.grid, roi)  # stage 3's tiles span the whole view
        kmax = {k: v.to(device) for k, v in measured_max_kernels(ml, mr, cfg.max_radius).items()}
        start_k = {k: v[tile_of] for k, v in kmax.items()}
        # the field mean of the calibration itself: start_k repeats edge patches on a full view
        uniform = {k: v.mean(0) for k, v in kmax.items()}
    else:
        uniform = {k: v.to(device) for k, v in parametric_max_kernels(cfg.max_radius, cfg.kernel_beta).items()}
        start_k = {k: v[None] for k, v in uniform.items()}

    timings: dict[str, float] = {}
    say("stage 1: latent-map initialisation")
    if cfg.init == "closed" and measured_kernels is not None:  # calibrated kernels vary over the field
        size = kernel_size(cfg.max_radius * cfg.measured_support)
        per_patch = measured_layer_kernels(ml.to(device), mr.to(device), radii, size)
        init = closed_form_layers_patched(yl, yr, per_patch, cfg.grid, cfg.lam, store, roi)
        del per_patch
    elif cfg.init == "closed":
        init = closed_form_layers(yl, yr, layer_kernels(uniform, radii), cfg.lam, store)
    else:  # measured kernels enter the iterative variant as their field mean
        init = iterative_layers(yl, yr, layer_kernels(uniform, radii), cfg.init_iters, cfg.init_lr,
                                deadline(0.3), store)
    timings["init"] = init.seconds
    # stage-1 readout: per pixel, the layer whose reblur best explains both views
    warm = residual_weights(yl, yr, init.blur_left, init.blur_right, cfg.choice_windows, cfg.choice_temperature)
    stage_images = {"init": _blend(warm, init.latent).cpu().numpy()}

    say("stage 2: defocus map (G_D)")
    with autocast(device, cfg.precision):
        _, weights, log2 = train_defocus_net(yl, yr, init.blur_left, init.blur_right, radii, cfg,
                                             deadline(0.45), warm)
    weights = weights.float()
    timings["defocus"] = log2.seconds
    info: dict = {"disparity_px": disparity, "gd_iters": log2.iters, "gd_stopped": log2.stopped,
                  "defocus_source": "G_D", "output_stage": "kernels"}
    stage_images["defocus"] = _blend(weights, init.latent).cpu().numpy()
    stage2_out = stage_images["defocus"]
    # guard (ours): G_D's full-frame reblur error (Eq. 10's data term) against the stage-1 choice's;
    # a collapsed G_D (one layer everywhere) explains the views far worse and is not used
    ratio = _reblur_error(weights, init, yl, yr) / max(_reblur_error(warm, init, yl, yr), 1e-20)
    info["gd_reblur_ratio"] = ratio
    fallback = None
    if ratio > cfg.gd_max_reblur_ratio:
        fallback = f"G_D reblur error {ratio:.2f}x the stage-1 choice's"
    elif log2.stopped == "time budget" and log2.iters < cfg.gd_warm_iters:
        # budget cut G_D before it even matched its warm-start target: use that target rather
        # than a half-trained network
        fallback = "time budget hit during G_D warm-up"
    if fallback:
        weights, stage2_out = warm, stage_images["init"]
        info["defocus_source"] = f"stage-1 residual ({fallback})"
    del warm
    defocus = (weights * radii.view(-1, 1, 1).to(device)).sum(0).cpu()
    layers = init.latent.float().cpu().numpy() if cfg.keep_layers else None
    del init

    dl3 = deadline(0.8)
    if dl3 is not None and time.perf_counter() > dl3:
        # no time left for G_F: keep the stage-2 image and the starting kernels (see info)
        aif, losses3 = stage2_out, []
        kernels_out = {k: v.expand(cfg.grid[0] * cfg.grid[1], -1, -1, -1) for k, v in start_k.items()}
        info["output_stage"] = "defocus (time budget exhausted before stage 3)"
        info.update({"gf_iters": 0, "gf_stopped": "time budget"})
    else:
        say("stage 3: non-uniform kernels (G_F)")
        resolve = cfg.kernel_readout == "resolve"
        ks = learn_kernels(yl, yr, weights, radii, start_k, cfg, dl3, deadline(0.88 if resolve else 0.95))
        timings["kernels"] = ks.log.seconds
        stage_images["kernels"] = ks.aif.cpu().numpy()
        barely_started = ks.log.stopped == "time budget" and ks.log.iters < cfg.min_kernel_iters
        if resolve and not barely_started:
            t3 = time.perf_counter()
            rechoose = info["defocus_source"] != "G_D"
            choice3, image = _resolve_with_kernels(yl, yr, ks.kernels, radii, weights, rechoose, cfg, store)
            stage_images["kernels"] = image.cpu().numpy()
            if rechoose and cfg.output_stage == "kernels":  # the map of the layer choice behind the output
                weights = choice3
                defocus = (weights * radii.view(-1, 1, 1).to(device)).sum(0).cpu()
            timings["kernels"] += time.perf_counter() - t3
        aif, losses3, kernels_out = stage_images["kernels"], ks.log.losses, ks.kernels
        if barely_started:
            aif = stage2_out  # G_F barely started: keep the stage-2 result (see info)
            info["output_stage"] = "defocus (time budget hit before G_F made min_kernel_iters steps)"
        info.update({"gf_iters": ks.log.iters, "gf_stopped": ks.log.stopped, "prefit_loss": ks.prefit_loss})
    if cfg.output_stage in ("init", "defocus"):
        aif = stage_images["init"] if cfg.output_stage == "init" else stage2_out
        info["output_stage"] = f"{cfg.output_stage} (requested)"
    elif cfg.output_stage != "kernels":
        raise InputError(f"output stage {cfg.output_stage!r}: expected init, defocus or kernels")
    timings["total"] = time.perf_counter() - t0
    sides = sorted({"f" if r >= 0 else "b" for r in radii.tolist()}, reverse=True)
    kl = np.stack([kernels_out[s][:, 0].cpu().numpy() for s in sides])
    kr = np.stack([kernels_out[s][:, 1].cpu().numpy() for s in sides])
    info["sides"] = sides
    return ZeroShotResult(
        aif=aif, defocus=defocus.numpy(), kernels_left=kl, kernels_right=kr,
        layers=layers, losses={"defocus": log2.losses, "kernels": losses3},
        stage_images=stage_images, weights=weights.cpu().numpy() if cfg.keep_layers else None,
        radii=radii.numpy(), timings=timings,
        info=info)
