"""Zero-shot stage-1 layer choice on the Pixel 4 dev scenes: PSNR of the stage-1 image under
several per-pixel choice rules, against a GT-picked oracle.

The closed-form layers are solved once per scene (about 15 s each), on the GT crop plus
``--context`` px (default 64) of the views around it; every rule then only re-blends them, so
rules are cheap to compare. Scores are on the GT crop. A row picks each pixel's layer from the
GT defocus map (the best layer per map level): what a perfect defocus map would give.

With ``--kernels`` it also compares how the measured calibration kernels enter stage 1: their
mean over the field, downsized per layer from one cropped largest kernel (session 3); per patch,
downsized; per patch, stretched from the calibration to every layer radius (the default now),
and the GT-picked oracle among the stretched layers. ``--registration`` adds the input's and the
default stage-1 image's PSNR after the best global sub-pixel translation onto the GT, and that
translation: how much of the score the GT's registration costs.

Usage:
  DPDEBLUR_SHARED=../shared python benchmarks/bench_layer_choice.py --threads 1 [--kernels] [--registration] [--context 64]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

# (windows, temperature) per rule; the last is ZeroShotConfig's default
RULES = {"w15 t0.3 (session 2)": ((15,), 0.3), "w31 t0.6": ((31,), 0.6), "w15+31+61 t0.6": ((15, 31, 61), 0.6)}


def calibrated_rows(pixel4: Path, left: torch.Tensor, right: torch.Tensor, gt, cfg, m: int) -> dict[str, float]:
    """Stage-1 PSNR (default choice rule) for three ways of using the calibration kernels; the
    views carry ``m`` px of context around the GT crop, which the calibration grid covers."""
    from dpcli.metrics.image import image_metrics
    from dpcli.optics import load_measured_kernels
    from dpcli.zeroshot import blend_layers, closed_form_layers, closed_form_layers_patched, residual_weights
    from dpcli.zeroshot.kernels import (kernel_size, layer_kernels, layer_radii, measured_layer_kernels,
                                        measured_max_kernels)

    cal = pixel4 / "calibration"
    fl, fr = load_measured_kernels(cal / "blur_kernels_left.npy", cal / "blur_kernels_right.npy")
    ml, mr = fr, fl  # swapped with the views
    radii = layer_radii(cfg.layers, cfg.max_radius, cfg.focus)
    kmax = measured_max_kernels(ml, mr, cfg.max_radius)
    h, w = left.shape[-2:]
    roi = (m, h - m, m, w - m)
    inner = (..., slice(m, h - m), slice(m, w - m))
    ways = {
        "cal: mean, downsized (session 3)": lambda: closed_form_layers(
            left, right, layer_kernels({k: v.mean(0) for k, v in kmax.items()}, radii), cfg.lam),
        "cal: per patch, downsized": lambda: closed_form_layers_patched(
            left, right, layer_kernels(kmax, radii), cfg.grid, cfg.lam, roi=roi),
        "cal: per patch, stretched (default)": lambda: closed_form_layers_patched(
            left, right, measured_layer_kernels(ml, mr, radii, kernel_size(cfg.max_radius * cfg.measured_support)),
            cfg.grid, cfg.lam, roi=roi),
    }
    row, default = {}, "cal: per patch, stretched (default)"
    for name, solve in ways.items():
        init = solve()
        weights = residual_weights(left, right, init.blur_left, init.blur_right, cfg.choice_windows,
                                   cfg.choice_temperature)
        row[name] = image_metrics(blend_layers(weights, init.latent)[inner].numpy(), gt)["psnr"]
        if name == default:
            row["cal: oracle (GT-picked, w15)"] = oracle_psnr(init.latent[inner], gt)
    return row


def layer_errors(latent: torch.Tensor, gt: np.ndarray) -> torch.Tensor:
    """Squared error of every layer against the GT, channels averaged: (L, C, H, W) -> (L, H, W)."""
    target = torch.as_tensor(gt)
    return torch.stack([(layer.float() - target).square().mean(0) for layer in latent])


def oracle_psnr(latent: torch.Tensor, gt: np.ndarray) -> float:
    """PSNR when every pixel takes the layer closest to the ground truth over a 15-px window: the
    ceiling of any per-pixel choice among these layers."""
    from dpcli.metrics.image import image_metrics
    from dpcli.optics.windows import box_mean
    from dpcli.zeroshot import blend_layers

    err = torch.stack([box_mean(e, 7) for e in layer_errors(latent, gt)])  # 15-px window
    oracle = torch.nn.functional.one_hot(err.argmin(0), latent.shape[0]).permute(2, 0, 1).float()
    return image_metrics(blend_layers(oracle, latent).numpy(), gt)["psnr"]


def depth_oracle_psnr(latent: torch.Tensor, weights: torch.Tensor, gt: np.ndarray, gt_map: np.ndarray,
                      levels: int = 64) -> float:
    """PSNR when the layer follows the GT defocus map: every pixel of one GT-map level (64 quantile
    bins of the valid map) takes the layer closest to the GT over that level, softened by a 15-px
    box; invalid pixels keep ``weights``. A perfect defocus map with the best mapping from its
    levels to layers: the ceiling of anything G_D could learn."""
    from dpcli.metrics.image import image_metrics
    from dpcli.optics.windows import box_mean
    from dpcli.zeroshot import blend_layers

    level_map = torch.as_tensor(np.asarray(gt_map, np.float32))
    valid = level_map > 0
    edges = torch.quantile(level_map[valid][::7], torch.linspace(0, 1, levels + 1)[1:-1])
    level = torch.bucketize(level_map, edges)
    err = layer_errors(latent, gt)
    choice = torch.zeros_like(level)
    for j in level[valid].unique().tolist():
        pick = (level == j) & valid
        choice[pick] = err[:, pick].mean(1).argmin()
    onehot = torch.nn.functional.one_hot(choice, latent.shape[0]).permute(2, 0, 1).float()
    chosen = torch.where(valid, onehot, weights)
    return image_metrics(blend_layers(torch.stack([box_mean(c, 7) for c in chosen]), latent).numpy(), gt)["psnr"]


def registration_rows(stage1: torch.Tensor, combined: torch.Tensor, gt: np.ndarray, margin: int = 10
                      ) -> dict[str, float]:
    """PSNR without the image's ``margin``-px border (where a translation wraps), as scored and
    after the best global sub-pixel translation onto the GT (a diagnostic: the published protocol
    does not align), and that translation for the stage-1 image."""
    from dpcli.metrics.image import aligned_psnr, psnr

    core = (..., slice(margin, -margin), slice(margin, -margin))
    row = {}
    for name, image in (("input", combined), ("default", stage1)):
        row[f"{name}, inner"] = psnr(image[core], gt[core])
        row[f"{name}, inner, GT-aligned"], (dx, dy) = aligned_psnr(image, gt, margin=margin)
    return row | {"  default's shift x (px)": dx, "  default's shift y (px)": dy}


def scene_row(pixel4: Path, sid: str, calibrated: bool = False, registration: bool = False, context: int = 64
              ) -> dict[str, float]:
    from dpcli.metrics.image import image_metrics
    from dpcli.metrics.protocols import PIXEL4_CROP, load_pixel4_scene
    from dpcli.zeroshot import blend_layers, closed_form_layers, make_config, residual_weights
    from dpcli.zeroshot.kernels import layer_kernels, layer_radii, parametric_max_kernels

    cfg = make_config("fast")
    sc = load_pixel4_scene(pixel4, sid)  # swap_lr=True: our orientation
    r0, r1, c0, c1 = PIXEL4_CROP
    m = min(context, r0, c0)  # px of the views around the GT crop, deblurred and then cut away
    left = torch.as_tensor(np.asarray(sc.left[:, r0 - m : r1 + m, c0 - m : c1 + m]))
    right = torch.as_tensor(np.asarray(sc.right[:, r0 - m : r1 + m, c0 - m : c1 + m]))
    inner = (..., slice(m, m + r1 - r0), slice(m, m + c1 - c0))
    radii = layer_radii(cfg.layers, cfg.max_radius, cfg.focus)
    kernels = layer_kernels(parametric_max_kernels(cfg.max_radius, cfg.kernel_beta), radii)
    init = closed_form_layers(left, right, kernels, cfg.lam)
    combined = ((left + right) / 2)[inner]
    row = {"input": image_metrics(combined.numpy(), sc.gt)["psnr"]}
    for name, (windows, temp) in RULES.items():
        weights = residual_weights(left, right, init.blur_left, init.blur_right, windows, temp)
        stage1 = blend_layers(weights, init.latent)[inner]  # the last rule is the default
        row[name] = image_metrics(stage1.numpy(), sc.gt)["psnr"]
    row["oracle (GT-picked, w15)"] = oracle_psnr(init.latent[inner], sc.gt)
    row["layer from the GT defocus map"] = depth_oracle_psnr(init.latent[inner], weights[inner], sc.gt, sc.gt_defocus)
    if registration:
        row |= registration_rows(stage1, combined, sc.gt)
    if calibrated:
        row |= calibrated_rows(pixel4, left, right, sc.gt, cfg, m)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixel4", type=Path,
                    default=Path(os.environ.get("DPDEBLUR_SHARED", "../shared")) / "data" / "pixel4")
    ap.add_argument("--scenes", default="002,006,009,013")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kernels", action="store_true", help="also the calibrated-kernel rows")
    ap.add_argument("--context", type=int, default=64,
                    help="px of the full views around the GT crop that are deblurred too (0: the crop alone)")
    ap.add_argument("--registration", action="store_true",
                    help="also PSNR after the best sub-pixel translation onto the GT (a diagnostic)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = {sid: scene_row(args.pixel4, sid, args.kernels, args.registration, args.context)
            for sid in args.scenes.split(",")}
    names = list(next(iter(rows.values())))
    print(f"{'rule':>36} " + " ".join(f"{s:>7}" for s in rows) + f" {'mean':>7}")
    for name in names:
        values = [rows[s][name] for s in rows]
        print(f"{name:>36} " + " ".join(f"{v:7.2f}" for v in values) + f" {np.mean(values):7.3f}")


if __name__ == "__main__":
    main()
