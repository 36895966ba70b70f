"""sRGB transfer curve (IEC 61966-2-1), differentiable, on tensors or arrays of any shape."""
from __future__ import annotations

import torch

__all__ = ["srgb_to_linear", "linear_to_srgb"]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] -> linear light (negatives clamped to 0)."""
    x = torch.as_tensor(x)
    x = x.clamp_min(0)
    high = ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(x <= 0.04045, x / 12.92, high)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] -> sRGB-encoded values (negatives clamped to 0)."""
    x = torch.as_tensor(x)
    x = x.clamp_min(0)
    high = 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, 12.92 * x, high)
