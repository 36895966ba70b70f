"""Configuration of the zero-shot MPI deblurring optimiser (thesis 004, sections 3.1-3.4).

Two schedules: ``fast`` (closed-form stage 1, G_D trained on random crops, kernels learned by
variable projection then a short joint refinement) and ``paper`` (the thesis' structure at long
iteration counts: iterative stage 1, dense G_F, many more steps). Every field can be overridden.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

Focus = Literal["front", "back", "both"]
OUTPUT_STAGES = ("init", "defocus", "kernels")  # in pipeline order


@dataclass
class ZeroShotConfig:
    """All knobs of :func:`dpcli.zeroshot.zeroshot_deblur`.

    Layers and kernels:
        layers: N + 1 layers per focus side (paper: 18 for Pixel 4, i.e. radii 0..17 px, 35 x 35
            kernels); ``focus="both"`` uses 2N + 1 layers (Eq. 11).
        max_radius: blur radius (px) of the last layer; layer i has radius ``max_radius * i / N``.
        focus: "front" (objects behind the focal plane, positive radii), "back" or "both".
        grid: (rows, cols) of the non-uniform kernel patches (paper 6 x 8 on 1008 x 1344).
        kernel_beta: floor of the parametric RDPD kernels' ramp (larger = less L/R separation).
        measured_support: with measured kernels, stage 1 stretches each patch's calibration PSF to
            every layer radius (not downsized from a cropped largest kernel) in arrays of
            ``2 ceil(measured_support * max_radius) + 1`` px.
    Stage 1 (latent-map init, Eq. 2-4):
        init: "closed" (regularised joint L/R Wiener deconvolution, exact LS) | "iterative" (Adam).
        lam: Tikhonov weight on the latent gradients in the closed form (relative to the image
            mean level); also the weight of that prior in stage 3's closed form.
        choice_windows, choice_temperature, choice_guide_eps: the per-pixel layer choice read from
            stage 1 (softmin of the L/R reblur residual averaged over these windows, edge-aware with
            a guided filter where ``choice_guide_eps`` > 0, its coefficients found on
            ``choice_scale``-px blocks); it also warm-starts G_D.
    Stage 2 (G_D, Eq. 5-10, 13-14): iterations, learning rate, crop size/batch (in G_D input
        pixels), TV weight; ``gd_downsample`` feeds G_D a 2x area-downsampled pair (fast only);
        the first ``gd_warm_iters`` steps imitate the stage-1 residual choice (cross-entropy; a
        speed lever, not in the thesis), then Eq. 10 + TV fine-tune at ``gd_finetune_lr`` x lr;
        G_D's map is kept only if it re-blurs into the views within ``gd_max_reblur_ratio`` of
        the stage-1 choice's error (a guard of ours).
    Stage 3 (G_F, section 3.3, Eq. 12, 15): variable-projection and joint iterations, lr's,
        edge-aware latent prior weight, G_F grouping (1 = the dense network of Fig. 3.4);
        at most ``max_active`` layers per patch (those most often a pixel's first choice) are
        solved in stage 3. ``kernel_readout``: how stage 3's image is read out (see the field).
    output_stage: the stage whose image is the result; the pipeline stops after it ("init":
        stage 1 + fusion only, "defocus": + G_D, "kernels": the full method).
    fusion: the stage-1 fusion method, by name (:func:`dpcli.zeroshot.fusion.fusion_methods`).
    time_budget: wall-clock seconds; stage 2 stops at 45 % of it (95 % when it is the output
        stage), stage 3's variable projection at 80 %, its joint refinement at 95 % (88 % with the
        "resolve" readout, which needs about a stage 1's time after it). Plateau early stopping
        in every loop.

    :meth:`validate` checks every field (``zeroshot_deblur`` calls it before any work).
    """

    layers: int = 18
    max_radius: float = 17.0
    focus: Focus = "front"
    grid: tuple[int, int] = (6, 8)
    # RDPD floor beta of the parametric kernels. The paper does not fix it; 0.5 narrows the L/R
    # centroid gap from 0.70|r| (RDPD's 0.1) to 0.59|r|, toward the 0.49|r| of the calibrated
    # Pixel 4 kernels: stage 1 on our 4 dev scenes 32.36 dB (0.1), 32.50 (0.3), 32.56 (0.5), 32.57 (0.7).
    kernel_beta: float = 0.5
    # stage-1 layer choice: softmin of the L/R reblur residual averaged over these box windows.
    # 4 dev scenes, stage 1: window 15 / temp 0.3 32.43 dB; 31 / 0.6 32.53; 15+31+61 / 0.6 32.56
    choice_windows: tuple[int, ...] = (15, 31, 61)
    choice_temperature: float = 0.6
    # ... pooled along image edges (a guided filter, this eps in sRGB units squared; 0 = box means).
    # Pixel 4 dev, stage 1 gain / artefact share: box +1.293 / 0.0234; guided, eps 1e-4 / 1e-3:
    # +1.307 / 0.0210, +1.310 / 0.0211, every scene at or above box, in-focus pairs unchanged
    # (docs/benchmarks.md, "Zero-shot blotches")
    choice_guide_eps: float = 1e-3
    # ... its coefficients found on 2 x 2 blocks and upsampled (the fast guided filter; 1 = full
    # resolution). Pixel 4 dev, stage 1 (bench_zeroshot.py --output-stage init): every scene within
    # 0.005 dB of full resolution, fusion 4.2 -> 1.7 s; blocks of 4: within 0.013 dB, 1.4 s
    choice_scale: int = 2
    # ... and a layer whose latent overshoots the views' local range loses by excess / this (sRGB
    # units; 0 = off): ringing layers no longer win at depth edges (blotches, colour streaks)
    choice_overshoot: float = 0.0
    # measured kernels (--kernels): stage-1 kernel arrays hold measured_support x max_radius px of
    # PSF (the Pixel 4 calibration PSFs keep 1 % of their mass beyond 1.5x their nominal radius).
    # Stage 1, 4 dev scenes: downsized from a 35 px largest kernel 32.65 dB; stretched, 35 px 33.03; 53 px 33.11
    measured_support: float = 1.5
    init: Literal["closed", "iterative"] = "closed"
    lam: float = 0.03
    init_iters: int = 300
    init_lr: float = 0.01
    gd_iters: int = 250
    gd_lr: float = 2e-3
    gd_crop: int = 128
    gd_batch: int = 2
    gd_downsample: int = 2
    gd_warm_iters: int = 150
    gd_finetune_lr: float = 0.25
    tv_weight: float = 2e-5
    gd_max_reblur_ratio: float = 1.5  # G_D kept only if its reblur error is within this factor of stage 1's
    gf_prefit_iters: int = 150
    gf_vp_iters: int = 60
    gf_joint_iters: int = 20
    gf_lr: float = 2e-3
    latent_lr: float = 2e-3
    latent_weight: float = 2e-5
    edge_sigma: float = 0.02
    gf_groups: int | None = None  # None = one group per patch (per-patch generator); 1 = dense
    active_threshold: float = 2e-3
    max_active: int = 4
    min_kernel_iters: int = 10
    # stage-3 image: "resolve" (ours) solves every layer again in closed form with the learned
    # kernels, tent-blended per patch; "latent" stitches the jointly refined latent map's patch cores
    kernel_readout: Literal["resolve", "latent"] = "resolve"
    # which stage's image is the result; the pipeline stops after it: init | defocus | kernels
    output_stage: str = "kernels"
    # stage-1 layer fusion method (dpcli.zeroshot.fusion registry): "auto" = the learned fusion where
    # weights ship for the views' domain (colour DSLR pairs), else the residual choice
    fusion: str = "auto"
    # weights of the learned fusion (a file from `python -m dpcli.zeroshot.fusion_train`); None: the
    # shipped weights of the views' domain
    fusion_weights: str | None = None
    plateau_patience: int = 25
    plateau_tol: float = 1e-3
    time_budget: float | None = None
    precision: str = "fp32"
    device: str = "cpu"
    seed: int = 0
    keep_layers: bool = False

    @property
    def n(self) -> int:
        return self.layers - 1

    def with_(self, **changes) -> "ZeroShotConfig":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> "ZeroShotConfig":
        """Check every field; raise :class:`dpcli.errors.InputError` naming the CLI option (or the
        config field where there is none) and the valid range, e.g. "--layers must be at least 2
        (got 0)". Returns self."""
        from dpcli.errors import InputError

        for name, label, ok, expect in _CHECKS:
            value = getattr(self, name)
            try:
                good = bool(ok(value))
            except (TypeError, ValueError):
                good = False
            if not good:
                raise InputError(f"{label} must be {expect} (got {_show(value)})")
        rows, cols = self.grid
        if self.gf_groups is not None and (rows * cols) % self.gf_groups:
            raise InputError(f"gf_groups must divide the number of grid patches {rows * cols} "
                             f"(got {self.gf_groups})")
        from dpcli.zeroshot.fusion_registry import fusion_methods

        if self.fusion not in fusion_methods():
            raise InputError(f"--fusion must be one of {', '.join(fusion_methods())} (got {_show(self.fusion)})")
        if self.fusion_weights is not None:
            if self.fusion not in ("learned", "auto"):
                raise InputError(f"--fusion-weights is for --fusion learned (got --fusion {self.fusion})")
            if not Path(self.fusion_weights).is_file():
                raise InputError(f"--fusion-weights {self.fusion_weights}: no such file")
        return self


def _show(value) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    return repr(value) if isinstance(value, str) else str(value)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _at_least(lo):
    return lambda v: _int(v) and v >= lo


def _positive(v) -> bool:
    return _num(v) and v > 0


def _non_negative(v) -> bool:
    return _num(v) and v >= 0


# (field, label in messages: the CLI option where one exists, check, valid range in words)
_CHECKS = [
    ("layers", "--layers", _at_least(2), "at least 2"),
    ("max_radius", "--last-layer-radius", _positive, "> 0 px"),
    ("focus", "--focus", lambda v: v in ("front", "back", "both"), "front, back or both"),
    ("grid", "--grid", lambda v: len(v) == 2 and all(_int(x) and x >= 1 for x in v),
     "two positive integers ROWSxCOLS"),
    ("kernel_beta", "--kernel-beta", lambda v: _num(v) and 0 <= v < 1, "in [0, 1)"),
    ("choice_windows", "choice_windows", lambda v: len(v) >= 1 and all(_int(x) and x >= 1 for x in v),
     "one or more positive window sizes in px"),
    ("choice_temperature", "choice_temperature", _positive, "> 0"),
    ("choice_guide_eps", "choice_guide_eps", lambda v: _num(v) and v >= 0, ">= 0"),
    ("choice_scale", "choice_scale", lambda v: _int(v) and v >= 1, "an integer >= 1"),
    ("choice_overshoot", "choice_overshoot", lambda v: _num(v) and v >= 0, ">= 0"),
    ("measured_support", "measured_support", lambda v: _num(v) and v >= 1, ">= 1"),
    ("init", "--init", lambda v: v in ("closed", "iterative"), "closed or iterative"),
    ("lam", "lam", _positive, "> 0"),
    ("init_iters", "init_iters", _at_least(0), "an integer >= 0"),
    ("init_lr", "init_lr", _positive, "> 0"),
    ("gd_iters", "gd_iters", _at_least(0), "an integer >= 0"),
    ("gd_lr", "gd_lr", _positive, "> 0"),
    ("gd_crop", "gd_crop", _at_least(8), "an integer >= 8 px"),
    ("gd_batch", "gd_batch", _at_least(1), "an integer >= 1"),
    ("gd_downsample", "gd_downsample", _at_least(1), "an integer >= 1"),
    ("gd_warm_iters", "gd_warm_iters", _at_least(0), "an integer >= 0"),
    ("gd_finetune_lr", "gd_finetune_lr", _positive, "> 0"),
    ("tv_weight", "tv_weight", _non_negative, ">= 0"),
    ("gd_max_reblur_ratio", "gd_max_reblur_ratio", _positive, "> 0"),
    ("gf_prefit_iters", "gf_prefit_iters", _at_least(0), "an integer >= 0"),
    ("gf_vp_iters", "gf_vp_iters", _at_least(0), "an integer >= 0"),
    ("gf_joint_iters", "gf_joint_iters", _at_least(0), "an integer >= 0"),
    ("gf_lr", "gf_lr", _positive, "> 0"),
    ("latent_lr", "latent_lr", _positive, "> 0"),
    ("latent_weight", "latent_weight", _non_negative, ">= 0"),
    ("edge_sigma", "edge_sigma", _positive, "> 0"),
    ("gf_groups", "gf_groups", lambda v: v is None or (_int(v) and v >= 1), "None or an integer >= 1"),
    ("active_threshold", "active_threshold", _non_negative, ">= 0"),
    ("max_active", "max_active", _at_least(1), "an integer >= 1"),
    ("min_kernel_iters", "min_kernel_iters", _at_least(0), "an integer >= 0"),
    ("kernel_readout", "kernel_readout", lambda v: v in ("resolve", "latent"), "resolve or latent"),
    ("output_stage", "--output-stage", lambda v: v in OUTPUT_STAGES, "init, defocus or kernels"),
    ("plateau_patience", "plateau_patience", _at_least(1), "an integer >= 1"),
    ("plateau_tol", "plateau_tol", _non_negative, ">= 0"),
    ("time_budget", "--time-budget", lambda v: v is None or _positive(v), "> 0 seconds"),
    ("precision", "--precision", lambda v: v in ("fp32", "bf16", "fp16"), "fp32, bf16 or fp16"),
    ("device", "--device", lambda v: isinstance(v, str) and v != "", "a device name (auto, cpu, cuda, ...)"),
    ("seed", "--seed", _int, "an integer"),
]


SCHEDULES: dict[str, dict] = {
    "fast": {},
    # the thesis gives no iteration counts; these are long enough to converge everywhere we tried
    "paper": dict(init="iterative", init_iters=1000, gd_iters=2000, gd_downsample=1, gd_warm_iters=0, gd_crop=256, gd_batch=4,
                  gf_prefit_iters=500, gf_vp_iters=0, gf_joint_iters=1000, gf_groups=1, max_active=10**6,
                  plateau_patience=10**9, kernel_readout="latent"),
}


def make_config(schedule: str = "fast", **overrides) -> ZeroShotConfig:
    """Config of a named schedule with overrides (None values are ignored)."""
    if schedule not in SCHEDULES:
        from dpcli.errors import InputError

        raise InputError(f"--schedule must be one of {', '.join(SCHEDULES)} (got {schedule!r})")
    base = ZeroShotConfig(**SCHEDULES[schedule])
    return base.with_(**overrides)


__all__ = ["ZeroShotConfig", "SCHEDULES", "make_config", "Focus", "OUTPUT_STAGES"]
