"""Building blocks shared by BaMBNet and DefocusGAN.

Channel attention and RCAB follow RCAN (Zhang et al., ECCV 2018). The multi-branch U-Net is the
"blur-aware multi-branch" body of BaMBNet (``002_*``, Sec. III-A) and the "defocus map guide
block" (DGB) of DefocusGAN (``000_*``): M parallel branches of increasing capacity, each an
8-stage U-Net (4 max-pool stages, 4 upsample stages) whose every stage also receives the head
features average-pooled to its resolution, with skip additions between mirrored stages.

Branch capacities are written as in the papers' code, as a "size" per branch: 1 is the
light fully-convolutional branch (1x1 conv + ReLU, full resolution, no pooling), 3n+1 is a
residual group of n RCABs followed by max-pool (encoder) or nearest x2 upsampling (decoder).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dpcli.errors import ModelError


def inference_only() -> bool:
    """True when no autograd graph is recorded: in-place ops then save memory safely."""
    return not torch.is_grad_enabled()


def relu_(x: torch.Tensor) -> torch.Tensor:
    """ReLU in place (conv outputs are not needed by their backward, so this is autograd-safe)."""
    return F.relu(x, inplace=True)


def full_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``layer`` in float32 even under autocast: the output conv decides the image's
    precision (bf16 keeps 8 mantissa bits, too coarse for 16-bit output); it costs < 1 %."""
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return layer(x.float())
    return layer(x)


def conv3x3(in_ch: int, out_ch: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias)


class ConvAct(nn.Module):
    """3x3 conv + ReLU: the head that maps the input image(s) to features."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = conv3x3(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu_(self.conv(x))


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    """Global average pooling that accumulates low-precision input in float32 (faster on CPU for
    bf16, and more accurate). An ``nn.AdaptiveAvgPool2d(1)``, so the tiler can swap it."""

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.bfloat16, torch.float16):
            return x.mean(dim=(2, 3), keepdim=True, dtype=torch.float32).to(x.dtype)
        return x.mean(dim=(2, 3), keepdim=True)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention: x * sigmoid(W2 relu(W1 mean_hw(x))).

    Args:
        channels: feature channels C.
        reduction: bottleneck is C // reduction channels.
    Shapes: (B, C, H, W) -> (B, C, H, W). Without autograd the input is rescaled in place (in
    our blocks it is always a fresh conv output), saving one feature map.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = GlobalAvgPool()  # a module, so dpcli.tiling can swap in local pooling
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(x)
        y = torch.sigmoid(self.expand(F.relu(self.reduce(y))))
        return x.mul_(y) if inference_only() else x * y


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(relu(conv(x))))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.ca = ChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.conv2(relu_(self.conv1(x)))).add_(x)


class ResidualGroup(nn.Module):
    """n RCABs then a 3x3 conv, with a long skip: x + conv(RCAB^n(x))."""

    def __init__(self, channels: int, n_blocks: int, reduction: int = 16) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[RCAB(channels, reduction) for _ in range(n_blocks)])
        self.conv = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.blocks(x)).add_(x)


class PointwiseStage(nn.Module):
    """The light branch's stage: 1x1 conv + ReLU at full resolution (no pooling)."""

    resample = 1

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu_(self.conv(x))


class GroupStage(nn.Module):
    """A heavier branch's stage: residual group, then 2x2 max-pool ("down") or nearest x2 ("up")."""

    def __init__(self, channels: int, n_blocks: int, direction: str, reduction: int = 16) -> None:
        super().__init__()
        if direction not in ("down", "up"):
            raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
        self.group = ResidualGroup(channels, n_blocks, reduction)
        self.direction = direction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.group(x)
        if self.direction == "down":
            return F.max_pool2d(y, 2)
        return F.interpolate(y, scale_factor=2.0, mode="nearest")


def rcab_count(size: int) -> int:
    """Branch size of the papers' code (1, 4, 7, 10) -> RCABs per stage (0 = pointwise branch)."""
    if size <= 1:
        return 0
    if size % 3 != 1:
        raise ValueError(f"branch size {size}: expected 1 or 3n+1 (4, 7, 10, ...)")
    return size // 3


def make_stage(size: int, channels: int, direction: str, reduction: int = 16) -> nn.Module:
    n = rcab_count(size)
    return PointwiseStage(channels) if n == 0 else GroupStage(channels, n, direction, reduction)


class MultiBranchUNet(nn.Module):
    """M parallel 8-stage U-Nets over shared head features (BaMBNet body / DefocusGAN DGB).

    Stage s of branch b is ``stages[s][b]``. Stages 0-3 pool, 4-7 upsample. The input of each
    stage after the first is the previous output plus the head features average-pooled to its
    size, plus (decoder) the output of the mirrored encoder stage.

    Args:
        channels: feature width C.
        branches: branch sizes, e.g. (1, 4, 7, 10).
        reduction: channel-attention reduction.
    Shapes: features (B, C, H, W) with H, W multiples of 16 -> list of M tensors (B, C, H, W).
    """

    n_stages = 8

    def __init__(self, channels: int, branches: Sequence[int], reduction: int = 16) -> None:
        super().__init__()
        self.branches = tuple(int(b) for b in branches)
        self.stages = nn.ModuleList(
            nn.ModuleList(make_stage(b, channels, "down" if s < 4 else "up", reduction) for b in self.branches)
            for s in range(self.n_stages)
        )

    def pyramid(self, x: torch.Tensor, levels: int = 4) -> dict[tuple[int, int], torch.Tensor]:
        """Head features average-pooled to 1/2 .. 1/16 (computed once, shared by the branches)."""
        pyr = {tuple(x.shape[-2:]): x}
        h, w = x.shape[-2:]
        for k in range(1, levels + 1):
            size = (h >> k, w >> k)
            if size[0] and size[1] and size not in pyr:
                pyr[size] = F.adaptive_avg_pool2d(x, size)  # the authors' pooling, exactly
        return pyr

    @staticmethod
    def _pooled(pyr: dict, like: torch.Tensor) -> torch.Tensor:
        size = tuple(like.shape[-2:])
        if size not in pyr:
            pyr[size] = F.adaptive_avg_pool2d(next(iter(pyr.values())), size)
        return pyr[size]

    def branch(self, x: torch.Tensor, b: int, skip_mid: bool = True, pyr: dict | None = None) -> torch.Tensor:
        """Run branch ``b`` through all 8 stages (one branch at a time keeps peak memory low).

        ``skip_mid=False`` drops the skip from stage 3 into stage 6 (DefocusGAN's full-scale DGB).
        """
        pyr = self.pyramid(x) if pyr is None else pyr
        p = lambda t: self._pooled(pyr, t)  # noqa: E731
        st = [stage[b] for stage in self.stages]
        o1 = st[0](x)
        o2 = st[1](p(o1) + o1)
        o3 = st[2](p(o2) + o2)
        o4 = st[3](p(o3) + o3)
        o5 = st[4](p(o4) + o4)
        del o4
        y = p(o5) + o5
        if skip_mid:
            y = y + o3
        del o3, o5
        o6 = st[5](y)
        del y
        o7 = st[6](p(o6) + o6 + o2)
        del o6, o2
        return st[7](p(o7) + o7 + o1)

    def is_pointwise(self, b: int) -> bool:
        return all(isinstance(stage[b], PointwiseStage) for stage in self.stages)

    def forward_sum(self, x: torch.Tensor, skip_mid: bool = True, rows: int = 64) -> torch.Tensor:
        """Sum of all branch outputs, in bounded memory (inference path).

        Branches run one after another and are added into one accumulator; the light branch,
        a per-pixel MLP, runs in chunks of ``rows`` rows (exact: it has no spatial extent).
        Use :meth:`branch` per branch while training (masks need each branch's output).
        """
        pyr = self.pyramid(x)
        total: torch.Tensor | None = None
        order = sorted(range(len(self.branches)), key=self.is_pointwise)  # heavy branches first
        for b in order:
            if self.is_pointwise(b) and inference_only() and total is not None:
                self._pointwise_into(x, b, total, skip_mid, rows)
                continue
            f = self.branch(x, b, skip_mid, pyr)
            total = f if total is None else total.add_(f) if inference_only() else total + f
        assert total is not None
        return total

    def _pointwise_into(self, x: torch.Tensor, b: int, total: torch.Tensor, skip_mid: bool, rows: int) -> None:
        st = [stage[b] for stage in self.stages]
        for r0 in range(0, x.shape[-2], rows):
            xc = x[..., r0:r0 + rows, :]
            o1 = st[0](xc)
            o2 = st[1](xc + o1)
            o3 = st[2](xc + o2)
            o5 = st[4](st[3](xc + o3).add_(xc))
            o6 = st[5](o5.add_(xc).add_(o3) if skip_mid else o5.add_(xc))
            o7 = st[6](o6.add_(xc).add_(o2))
            total[..., r0:r0 + rows, :].add_(st[7](o7.add_(xc).add_(o1)))

    def short_branch(self, x: torch.Tensor, b: int, pyr: dict | None = None) -> torch.Tensor:
        """DefocusGAN's 1/4-scale DGB: stages 0, 1, 6, 7 of branch ``b`` (shared weights)."""
        pyr = self.pyramid(x) if pyr is None else pyr
        p = lambda t: self._pooled(pyr, t)  # noqa: E731
        st = [stage[b] for stage in self.stages]
        o1 = st[0](x)
        o2 = st[1](p(o1) + o1)
        o7 = st[6](p(o2) + o2)
        return st[7](p(o7) + o7 + o1)

    def shortest_branch(self, x: torch.Tensor, b: int, pyr: dict | None = None) -> torch.Tensor:
        """DefocusGAN's 1/8-scale DGB: stages 0 and 6 of branch ``b`` (shared weights)."""
        pyr = self.pyramid(x) if pyr is None else pyr
        st = [stage[b] for stage in self.stages]
        o1 = st[0](x)
        return st[6](self._pooled(pyr, o1) + o1)


def defocus_masks(coc: torch.Tensor, thresholds: Sequence[float]) -> list[torch.Tensor]:
    """Binary defocus masks from a COC map (``002_*`` Sec. III-C).

    Mask i covers thresholds[i] <= max_c |coc| < thresholds[i+1]; the last mask is open-ended.

    Args:
        coc: (B, C, H, W) signed COC radius in px (any C).
        thresholds: increasing lower bounds, e.g. (0, 1.9, 4.2, 6.2): one mask per branch.
    Returns: list of len(thresholds) float tensors (B, 1, H, W) (they partition the image).
    """
    blur = coc.abs().amax(dim=1, keepdim=True)
    bounds = list(thresholds)
    masks = [((blur >= lo) & (blur < hi)).to(coc.dtype) for lo, hi in zip(bounds, bounds[1:])]
    masks.append((blur >= bounds[-1]).to(coc.dtype))
    return masks


def mask_weight(iteration: int, anneal_iters: float = 2e4) -> float:
    """Annealed weight of the defocus-mask guidance: exp(-(2 it / N)^2), 0 from ``it >= N`` on."""
    if iteration >= anneal_iters:
        return 0.0
    return float(torch.exp(torch.tensor(-((iteration * 2.0 / anneal_iters) ** 2))))


def guided_sum(
    features: Sequence[torch.Tensor], masks: Sequence[torch.Tensor] | None, weight: float
) -> torch.Tensor:
    """Sum of branch features, each scaled by (1 - w) + w * mask_i (w = annealed weight)."""
    total: torch.Tensor | None = None
    for i, f in enumerate(features):
        if masks is not None and weight > 0:
            f = f * (masks[i] * weight + (1.0 - weight))
        total = f if total is None else total + f
    assert total is not None
    return total


def check_multiple(x: torch.Tensor, multiple: int, what: str) -> None:
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ModelError(
            f"{what}: input is {h}x{w}; height and width must be multiples of {multiple} "
            "(dpcli.api pads automatically)"
        )
