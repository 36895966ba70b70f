"""Small synthetic images shared by the zero-shot tests."""
from __future__ import annotations

import torch

from dpcli.optics import blur


def texture(h: int = 96, w: int = 96, seed: int = 0) -> torch.Tensor:
    """(1, h, w) smooth random texture in [0.2, 0.8]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (0.2 + 0.6 * x.clamp(0, 1))[0]


def blurred_pair(sharp: torch.Tensor, kl: torch.Tensor, kr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) image through (k, k) left and right kernels."""
    return blur(sharp[None], kl[None, None])[0], blur(sharp[None], kr[None, None])[0]
