"""Small synthetic DP pairs shared by the classical tests: a smooth texture and a piecewise-constant
depth rendered with the DP kernels of each region (linear light)."""
from __future__ import annotations

import torch

from dpcli.optics import blur, dp_kernels


def texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 1, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False)
    return (0.2 + 0.6 * x.clamp(0, 1))[0]


def dp_render(sharp: torch.Tensor, radius_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Piecewise-constant depth: blur with each region's DP kernels and composite (linear light)."""
    left = torch.zeros_like(sharp)
    right = torch.zeros_like(sharp)
    for r in radius_map.unique():
        kl, kr = dp_kernels(r.view(1))
        m = (radius_map == r).float()
        left += blur(sharp[None], kl[None], padding="reflect")[0] * m
        right += blur(sharp[None], kr[None], padding="reflect")[0] * m
    return left, right
