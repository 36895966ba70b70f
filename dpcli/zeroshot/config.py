"""Configuration of the zero-shot MPI deblurring optimiser (thesis 004, sections 3.1-3.4).

Two schedules: ``fast`` (closed-form stage 1, G_D trained on random crops, kernels learned by
variable projection then a short joint refinement) and ``paper`` (the thesis' structure at long
iteration counts: iterative stage 1, dense G_F, many more steps). Every field can be overridden.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Focus = Literal["front", "back", "both"]


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
        choice_windows, choice_temperature: the per-pixel layer choice read from stage 1 (softmin
            of the L/R reblur residual averaged over these box windows); it also warm-starts G_D.
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
    time_budget: wall-clock seconds; stage 2 stops at 45 %, stage 3's variable projection at
        80 %, its joint refinement at 95 % of it (88 % with the "resolve" readout, which needs
        about a stage 1's time after it). Plateau early stopping in every loop.
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
    output_stage: str = "kernels"  # which stage's image is the result: init | defocus | kernels
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
        from dpcli.errors import DpError

        raise DpError(f"--schedule {schedule}: unknown schedule ({', '.join(SCHEDULES)})")
    base = ZeroShotConfig(**SCHEDULES[schedule])
    return base.with_(**overrides)


__all__ = ["ZeroShotConfig", "SCHEDULES", "make_config", "Focus"]
