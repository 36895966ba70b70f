"""The two per-scene networks of the zero-shot MPI method (thesis 004, Fig. 3.4).

* :class:`DefocusNet` (G_D): concatenated DP views -> alpha map of the MPI at 1/8 resolution.
* :class:`KernelGenerator` (G_F): a co-optimised random tensor Z (P, 8N+4, 8N+4) -> P blur
  kernels (2N+1, 2N+1), softmax-normalised (non-negative, sum 1).

Both are trained from scratch on one scene; neither has pretrained weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LEAKY = 0.2


def _conv(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups)


class DefocusNet(nn.Module):
    """G_D of Fig. 3.4 (left).

    Conv(32)x3, Conv(64), MaxPool, Conv(64)x3, Conv(128), MaxPool, Conv(128)x3, Conv(256), MaxPool,
    Conv(L-1), LeakyReLU, Sigmoid; every conv 3x3 followed by LeakyReLU(0.2).

    Args:
        in_channels: 2C (left and right views concatenated).
        layers: number of MPI layers L (N+1 or 2N+1). The net predicts L-1 alphas: the first
            (bottom) layer of the over-operator is opaque (alpha = 1), which is what Fig. 3.4's
            Conv(N) output for an (N+1)-layer alpha map implies.

    Shapes: (B, 2C, H, W) with H, W multiples of 8 -> alpha (B, L, H/8, W/8).
    """

    def __init__(self, in_channels: int, layers: int) -> None:
        super().__init__()
        widths = [(in_channels, 32), (32, 32), (32, 32), (32, 64), "pool",
                  (64, 64), (64, 64), (64, 64), (64, 128), "pool",
                  (128, 128), (128, 128), (128, 128), (128, 256), "pool"]
        mods: list[nn.Module] = []
        for w in widths:
            if w == "pool":
                mods.append(nn.MaxPool2d(2))
            else:
                mods += [_conv(*w), nn.LeakyReLU(LEAKY, inplace=True)]
        self.features = nn.Sequential(*mods)
        self.layers = layers
        self.head = _conv(256, max(layers - 1, 1))
        self.reset_head()

    def reset_head(self) -> None:
        """Start from a uniform defocus map: alpha_i = 1 / (i + 1) makes every weight 1/L."""
        nn.init.normal_(self.head.weight, std=1e-3)
        with torch.no_grad():
            for c in range(self.head.out_channels):
                a = 1.0 / (c + 2)
                logit = math.log(a / (1 - a))
                self.head.bias[c] = logit / LEAKY if logit < 0 else logit  # undo the LeakyReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.leaky_relu(self.head(self.features(x)), LEAKY)
        alpha = torch.sigmoid(z)
        base = torch.ones_like(alpha[:, :1])
        return torch.cat([base, alpha], dim=1) if self.layers > 1 else base


def alpha_to_weights(alpha: torch.Tensor) -> torch.Tensor:
    """Over operator, Eq. 6: D_i = alpha_i * prod_{j > i} (1 - alpha_j). (B, L, h, w) -> same.

    With alpha_0 = 1 the weights sum to 1 at every pixel.
    """
    keep = 1 - alpha
    # exclusive reverse cumulative product: prod over j > i
    rev = torch.flip(keep, dims=[1])
    cum = torch.cumprod(rev, dim=1)
    excl = torch.cat([torch.ones_like(cum[:, :1]), cum[:, :-1]], dim=1)
    return alpha * torch.flip(excl, dims=[1])


class KernelGenerator(nn.Module):
    """G_F of Fig. 3.4 (right): Z (1, P, 4K, 4K) -> P kernels (P, K, K), K = 2N + 1.

    Conv(4P, s2), Conv(4P), Conv(16P, s2), Conv(16P), Conv(P), softmax over each kernel.
    ``groups``: 1 is the dense network of the figure; ``groups = P`` gives every patch its own
    small generator (4 and 16 channels per kernel), 50x cheaper on a CPU.
    """

    def __init__(self, patches: int, ksize: int, groups: int | None = None, seed: int = 0) -> None:
        super().__init__()
        g = patches if groups is None else int(groups)
        if patches % g:
            raise ValueError(f"groups {g} must divide the number of patches {patches}")
        p = patches
        self.ksize = ksize
        self.net = nn.Sequential(
            _conv(p, 4 * p, 2, g), nn.LeakyReLU(LEAKY),
            _conv(4 * p, 4 * p, 1, g), nn.LeakyReLU(LEAKY),
            _conv(4 * p, 16 * p, 2, g), nn.LeakyReLU(LEAKY),
            _conv(16 * p, 16 * p, 1, g), nn.LeakyReLU(LEAKY),
            _conv(16 * p, p, 1, g),
        )
        gen = torch.Generator().manual_seed(seed)
        self.z = nn.Parameter(torch.rand(1, p, 4 * ksize, 4 * ksize, generator=gen) * 0.1)

    def forward(self) -> torch.Tensor:
        logits = self.net(self.z)[0]  # (P, K, K)
        p, k, _ = logits.shape
        return torch.softmax(logits.reshape(p, k * k), dim=-1).reshape(p, k, k)
