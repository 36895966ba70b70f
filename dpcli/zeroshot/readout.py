"""Stage-3 readout (ours): the image of the learned-kernel stage.

Every layer is solved again in closed form with the learned per-patch kernels (tent-blended like
stage 1, so no seams at patch borders) and blended by stage 2's weights, or, where the stage-1
fusion stood in for G_D, by a fresh fusion of the new layers. The thesis' readout (the refined
latent's patch cores stitched together) is ``kernel_readout="latent"``: no readout step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from dpcli.zeroshot.config import ZeroShotConfig
from dpcli.zeroshot.fusion import blend_layers, fuse_layers
from dpcli.zeroshot.init import closed_form_cost, closed_form_layers_patched
from dpcli.zeroshot.kernels import kernel_size, layer_kernels, layer_radii
from dpcli.zeroshot.layers import store_dtype

__all__ = ["Readout", "read_out", "readout_seconds"]


@dataclass
class Readout:
    """Result of :func:`read_out`: weights (L, H, W) behind the image, image (C, H, W), seconds."""

    weights: torch.Tensor
    image: torch.Tensor
    seconds: float


def read_out(left: torch.Tensor, right: torch.Tensor, kernels: dict[str, torch.Tensor], radii: torch.Tensor,
             weights: torch.Tensor, cfg: ZeroShotConfig, rechoose: bool = False) -> Readout:
    """Stage-3 image from the learned kernels.

    Args:
        left, right: (C, H, W) views. kernels: {"f"|"b": (P, 2, K, K)} learned largest kernels per
            tile of ``cfg.grid`` (:class:`~dpcli.zeroshot.kernel_stage.KernelStage`). radii: (L,).
        weights: (L, H, W) stage-2 weights (used unless ``rechoose``).
        rechoose: re-run the stage-1 fusion (``cfg.fusion``) on the new layers instead.

    Returns:
        :class:`Readout`.
    """
    start = time.perf_counter()
    layers = closed_form_layers_patched(left, right, layer_kernels(kernels, radii), cfg.grid, cfg.lam,
                                        store_dtype(cfg))
    layers.radii = radii  # the learned fusion reads each layer's radius
    if rechoose:
        weights = fuse_layers(left, right, layers, cfg).weights
    return Readout(weights, blend_layers(weights, layers.latent), time.perf_counter() - start)


def readout_seconds(cfg: ZeroShotConfig, h: int, w: int, stage1_seconds: float,
                    stage1_roi: tuple[int, int, int, int] | None = None) -> float | None:
    """Predicted seconds of :func:`read_out` on an (h, w) scene, from the closed-form stage 1's
    measured time scaled by the two solves' FFT work (:func:`~dpcli.zeroshot.init.closed_form_cost`),
    with a 25 % margin: the time budget keeps this much for the readout. On small images the
    per-patch solves cost far more than stage 1's single one (6 x 8 grid on 384 x 256: ~17x).
    ``stage1_roi``: the calibration grid's ROI when stage 1 was solved per patch (measured
    kernels). None for the iterative stage 1 (its time says nothing about a closed-form solve)."""
    if cfg.init != "closed" or stage1_seconds <= 0:
        return None
    k = kernel_size(cfg.max_radius)
    n_layers = layer_radii(cfg.layers, cfg.max_radius, cfg.focus).numel()
    if stage1_roi is not None:
        k1 = kernel_size(cfg.max_radius * cfg.measured_support)
        stage1 = closed_form_cost(h, w, k1, n_layers, cfg.grid, stage1_roi)
    else:
        stage1 = closed_form_cost(h, w, k, n_layers)
    return 1.25 * stage1_seconds * closed_form_cost(h, w, k, n_layers, cfg.grid) / stage1
