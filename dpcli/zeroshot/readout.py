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
from dpcli.zeroshot.init import closed_form_layers_patched
from dpcli.zeroshot.kernels import layer_kernels
from dpcli.zeroshot.layers import store_dtype

__all__ = ["Readout", "read_out"]


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
    if rechoose:
        weights = fuse_layers(left, right, layers, cfg).weights
    return Readout(weights, blend_layers(weights, layers.latent), time.perf_counter() - start)
