"""The zero-shot MPI pipeline (thesis 004): named stages, each a public function in its module.

====================  ======================================  ==========================================
stage (timings key)   function                                result
====================  ======================================  ==========================================
kernels setup         :func:`~.kernels.prepare_kernels`       :class:`~.kernels.KernelSetup`
1 "init"              :func:`~.layers.solve_layers`           :class:`~.init.LayerStack`
1 "fusion"            :func:`~.fusion.fuse_layers`            :class:`~.fusion.Fusion`
2 "defocus"           :func:`~.defocus.fit_defocus_map`       :class:`~.defocus.DefocusStage`
3 "kernels"           :func:`~.kernel_stage.fit_kernels`      :class:`~.kernel_stage.KernelStage`
3 "readout"           :func:`~.readout.read_out`              :class:`~.readout.Readout`
====================  ======================================  ==========================================

:func:`zeroshot_deblur` validates the config before any work and stops after
``config.output_stage`` ("init": stage 1 and its fusion only; "defocus": + G_D; "kernels": all).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from dpcli.arrays import to_numpy, to_tensor
from dpcli.errors import InputError
from dpcli.optics.orientation import horizontal_disparity
from dpcli.zeroshot.config import OUTPUT_STAGES, ZeroShotConfig
from dpcli.zeroshot.defocus import fit_defocus_map
from dpcli.zeroshot.fusion import defocus_from_weights, fuse_layers
from dpcli.zeroshot.kernel_stage import fit_kernels
from dpcli.zeroshot.kernels import KernelSetup, prepare_kernels
from dpcli.zeroshot.layers import solve_layers
from dpcli.zeroshot.loop import past
from dpcli.zeroshot.readout import read_out, readout_seconds

__all__ = ["ZeroShotResult", "zeroshot_deblur", "BUDGET_SHARES"]

# Where each stage stops, as a fraction of config.time_budget from the start of the run. G_D gets
# more of it when it is the last stage; the "resolve" readout needs about a stage 1's time after G_F.
BUDGET_SHARES = {"iterative_init": 0.3, "defocus": 0.45, "defocus_last": 0.95, "kernels_vp": 0.8,
                 "kernels": 0.95, "kernels_resolve": 0.88}


@dataclass
class ZeroShotResult:
    """Output of :func:`zeroshot_deblur` (numpy arrays).

    Attributes:
        aif: (C, H, W) all-in-focus estimate (linear, same units as the views, not clipped).
        defocus: (H, W) signed blur radius in px (sum_i r_i D_i) of the weights behind ``aif``.
        kernels_left, kernels_right: (S, P, K, K) largest kernels per patch of the grid (P = rows x
            cols), learned by stage 3, or the ones G_F would start from (parametric, or the
            calibration per tile) when stage 3 did not run; S = 1 (front or back focus) or 2
            (front then back).
        layers: (L, C, H, W) stage-1 latent layers if ``keep_layers`` else None.
        weights: (L, H, W) the weights behind ``defocus`` if ``keep_layers`` else None.
        radii: (L,) layer radii in px.
        losses: per-stage loss curves ("defocus", "kernels"; empty for stages not run).
        stage_images: image of every stage that ran: "init" (stage-1 fusion), "defocus" (G_D's
            blend), "kernels" (after G_F).
        timings: seconds per stage that ran ("init", "fusion", "defocus", "kernels", "readout")
            and "total".
        info: ``stages_run``; iterations and stop reasons per stage; ``gd_reblur_ratio`` (G_D's
            reblur error over the stage-1 fusion's); ``defocus_source`` ("G_D", or the stage-1
            fusion when that ratio exceeds ``gd_max_reblur_ratio`` or the budget stopped G_D in its
            warm-up; "stage-1 <method>" with output stage init) and ``output_stage`` (which stage
            produced ``aif``, with the reason when it is not the requested one).
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
    t = to_tensor(x)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise InputError(f"{name} view must be (C, H, W) with C = 1 or 3, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"{name} view has {int((~torch.isfinite(t)).sum())} NaN or infinite values")
    return t


def _kernels_out(kernels: dict[str, torch.Tensor], sides: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """{"f"|"b": (P, 2, K, K)} -> left, right (S, P, K, K) numpy."""
    kl = np.stack([to_numpy(kernels[s][:, 0]) for s in sides])
    kr = np.stack([to_numpy(kernels[s][:, 1]) for s in sides])
    return kl, kr


def zeroshot_deblur(left, right, config: ZeroShotConfig | None = None,
                    measured_kernels: tuple | None = None, progress=None,
                    kernel_roi: tuple[int, int, int, int] | None = None) -> ZeroShotResult:
    """Deblur one DP pair by the zero-shot MPI method.

    Args:
        left, right: (C, H, W) or (H, W) linear views in [0, 1] (numpy or torch), OUR orientation
            (left view displaced toward +x behind the focal plane; swap before calling if not).
        config: :class:`ZeroShotConfig` (default: the fast schedule); validated before any work.
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

    Raises:
        InputError: an invalid config (message names the option and its range), views of the
            wrong shape or size, non-finite values, measured kernels that do not fit the grid.
    """
    cfg = (config or ZeroShotConfig()).validate()
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    yl, yr = _checked_views(left, right, cfg, measured_kernels)
    c, h, w = yl.shape
    torch.manual_seed(cfg.seed)
    from dpcli.device import resolve_device

    device = resolve_device(cfg.device)
    yl, yr = yl.to(device), yr.to(device)
    budget = cfg.time_budget
    deadline = (lambda share: t0 + BUDGET_SHARES[share] * budget) if budget else (lambda share: None)
    last = OUTPUT_STAGES.index(cfg.output_stage)
    disparity = _disparity_checked(yl, yr, cfg)
    setup: KernelSetup = prepare_kernels(cfg, h, w, measured_kernels, kernel_roi, device)
    radii = setup.radii
    run = _StageLog(info={"disparity_px": disparity, "fusion": cfg.fusion, "sides": setup.sides, "stages_run": []})
    info, stage_images = run.info, run.stage_images

    say("stage 1: latent-map initialisation")
    stack = solve_layers(yl, yr, setup, cfg, deadline("iterative_init"))
    run.ran("init", stack.seconds)
    reserve = readout_seconds(cfg, h, w, stack.seconds, setup.roi)
    # stage-1 readout: per pixel, the fusion of the layers (default: the layer whose reblur best
    # explains both views)
    fusion = fuse_layers(yl, yr, stack, cfg)
    info["fusion"] = fusion.method  # "auto" says which it ran
    run.ran("fusion", fusion.seconds)
    stage_images["init"] = to_numpy(fusion.image)
    weights, aif = fusion.weights, stage_images["init"]
    n_patch = cfg.grid[0] * cfg.grid[1]
    kernels_out = {k: v.expand(n_patch, -1, -1, -1) for k, v in setup.start.items()}
    info.update({"defocus_source": f"stage-1 {fusion.method}", "output_stage": "init"})
    layers = to_numpy(stack.latent) if cfg.keep_layers else None

    if last >= 1:
        say("stage 2: defocus map (G_D)")
        stage2 = fit_defocus_map(yl, yr, stack, fusion, cfg, deadline("defocus_last" if last == 1 else "defocus"))
        run.ran("defocus", stage2.seconds)
        run.losses["defocus"] = stage2.log.losses
        stage_images["defocus"] = to_numpy(stage2.gd_image)
        weights, aif = stage2.weights, to_numpy(stage2.image)
        info.update({"gd_iters": stage2.log.iters, "gd_stopped": stage2.log.stopped,
                     "gd_reblur_ratio": stage2.reblur_ratio, "defocus_source": stage2.source,
                     "output_stage": "defocus"})
        del fusion
    del stack
    if last >= 2:
        dl_vp, dl3 = _stage3_deadlines(cfg, deadline, reserve if budget else None, info)
        if past(dl_vp):  # no time left for G_F: keep the stage-2 image and the starting kernels
            info["output_stage"] = "defocus (time budget exhausted before stage 3)"
            info.update({"gf_iters": 0, "gf_stopped": "time budget"})
        else:
            say("stage 3: non-uniform kernels (G_F)")
            kernels_out, weights, aif = _stage3_kernels(yl, yr, weights, aif, radii, setup, cfg, dl_vp, dl3, run)
    if info["output_stage"] == cfg.output_stage and cfg.output_stage != "kernels":
        info["output_stage"] = f"{cfg.output_stage} (requested)"
    run.timings["total"] = time.perf_counter() - t0
    kl, kr = _kernels_out(kernels_out, setup.sides)
    return ZeroShotResult(
        aif=aif, defocus=to_numpy(defocus_from_weights(weights, radii)), kernels_left=kl, kernels_right=kr,
        layers=layers, losses=run.losses, stage_images=stage_images,
        weights=to_numpy(weights) if cfg.keep_layers else None, radii=to_numpy(radii), timings=run.timings,
        info=info)


@dataclass
class _StageLog:
    """What a run records as its stages go: seconds per stage, facts, losses, stage images."""

    info: dict
    timings: dict[str, float] = field(default_factory=dict)
    losses: dict[str, list[float]] = field(default_factory=lambda: {"defocus": [], "kernels": []})
    stage_images: dict[str, np.ndarray] = field(default_factory=dict)

    def ran(self, stage: str, seconds: float) -> None:
        self.timings[stage] = seconds
        self.info["stages_run"].append(stage)


def _checked_views(left, right, cfg: ZeroShotConfig, measured_kernels) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) float32 views, refused (InputError) when they differ in size, are too small for the
    method or for the kernel grid the run uses."""
    yl, yr = _as_tensor(left, "left"), _as_tensor(right, "right")
    if yl.shape != yr.shape:
        raise InputError(f"left {tuple(yl.shape)} and right {tuple(yr.shape)} views differ in size")
    c, h, w = yl.shape
    if min(h, w) < 32:
        raise InputError(f"image of {h}x{w} px is too small for zero-shot deblurring (>= 32 px)")
    uses_grid = measured_kernels is not None or cfg.output_stage == "kernels"
    if uses_grid and (h < 8 * cfg.grid[0] or w < 8 * cfg.grid[1]):
        raise InputError(f"--grid {cfg.grid[0]}x{cfg.grid[1]} needs an image of at least {8 * cfg.grid[0]}x"
                         f"{8 * cfg.grid[1]} px (8 px per patch), got {h}x{w}")
    return yl, yr


def _disparity_checked(yl: torch.Tensor, yr: torch.Tensor, cfg: ZeroShotConfig) -> float:
    """The views' horizontal disparity (px), with a warning when its sign contradicts ``cfg.focus``."""
    disparity = horizontal_disparity(yl, yr)
    if cfg.focus == "front" and disparity < -0.3 or cfg.focus == "back" and disparity > 0.3:
        warnings.warn(f"the left view is displaced by {disparity:+.2f} px relative to the right, "
                      f"which contradicts focus={cfg.focus!r}: the views are probably swapped "
                      "(pass --swap-lr) or the scene needs --focus both", stacklevel=3)
    return disparity


def _stage3_deadlines(cfg: ZeroShotConfig, deadline, reserve: float | None, info: dict):
    """Deadlines of G_F's variable-projection fit and of its whole stage (resolve readout: the
    predicted readout time ``reserve`` is kept free)."""
    resolve = cfg.kernel_readout == "resolve"
    dl_vp, dl3 = deadline("kernels_vp"), deadline("kernels_resolve" if resolve else "kernels")
    if resolve and reserve is not None:  # keep the predicted readout time free
        dl3 = min(dl3, deadline("kernels") - reserve)
        dl_vp = min(dl_vp, dl3)
        info["readout_reserve_s"] = reserve
    return dl_vp, dl3


def _stage3_kernels(yl, yr, weights, aif, radii, setup: KernelSetup, cfg: ZeroShotConfig, dl_vp, dl3,
                    run: _StageLog):
    """Stage 3: fit the non-uniform kernels (G_F) and read the image out with them. Returns the
    kernels, layer weights and image the result reports (those given, when G_F barely started)."""
    ks = fit_kernels(yl, yr, weights, radii, setup.start, cfg, dl_vp, dl3)
    run.ran("kernels", ks.log.seconds)
    run.losses["kernels"], kernels_out = ks.log.losses, ks.kernels
    run.stage_images["kernels"] = to_numpy(ks.aif)
    info = run.info
    info.update({"gf_iters": ks.log.iters, "gf_stopped": ks.log.stopped, "prefit_loss": ks.prefit_loss})
    if ks.log.stopped == "time budget" and ks.log.iters < cfg.min_kernel_iters:
        # G_F barely started: keep the stage-2 result
        info["output_stage"] = "defocus (time budget hit before G_F made min_kernel_iters steps)"
        return kernels_out, weights, aif
    if cfg.kernel_readout == "resolve":
        rechoose = info["defocus_source"] != "G_D"  # the layer choice behind the output
        out = read_out(yl, yr, ks.kernels, radii, weights, cfg, rechoose)
        run.ran("readout", out.seconds)
        run.stage_images["kernels"] = to_numpy(out.image)
        weights = out.weights
    info["output_stage"] = "kernels"
    return kernels_out, weights, run.stage_images["kernels"]
