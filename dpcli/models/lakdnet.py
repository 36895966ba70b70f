"""LaKDNet for defocus deblurring (dual-pixel and single image).

Paper: Ruan, Bemana, Seidel, Myszkowski, Chen, "Revisiting Image Deblurring with an Efficient
ConvNet", 2023 (arXiv 2302.02234). The authors release DPDD-trained checkpoints
(github.com/lingyanruan/LaKDNet; AGPL-3.0 applies to code and weights; dpdeblur never ships
them). This is our own implementation from the paper, checked against the authors' class on
``/work/shared/reference/lakdnet_*`` (tests/models).

The LaKD block replaces attention with large-kernel depthwise spatial mixing and pointwise
channel mixing, twice: four convolutions (k x k depthwise, 1x1, k x k depthwise, 1x1), each
applied to the previous step's result, passed through GELU and added back onto the mixer's input.
A block adds the feed-forward net's output to its own input (the mixer's result feeds only the
feed-forward net). The rest is the four-level skeleton of :mod:`dpcli.models.levels` without refinement blocks.
Input: cat(L, R, C) (dual-pixel, C = the combined view) or C; output: a residual on the last
three input channels, clipped to [0, 1]. RGB order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dpcli.models.levels import Block, LevelNetCfg, LevelUNet, base_cfg_from
from dpcli.models.registry import Family, register_family, register_model
from dpcli.tiling import TilingSpec

_PAPER = "LaKDNet (Ruan et al. 2023)"


@dataclass(frozen=True)
class LaKDNetCfg(LevelNetCfg):
    in_chans: int = 9
    width: int = 32
    depths: tuple[int, int, int, int] = (8, 12, 12, 16)
    refinement: int = 0
    ffn_expansion: float = 2.3
    kernel_sizes: tuple[int, int, int, int] = (9, 9, 9, 9)


class LargeKernelMixer(nn.Module):
    """Spatial (k x k depthwise) then channel (1x1) mixing, twice; every step is
    ``x + GELU(conv(previous))`` with x the mixer's input. Shapes: (B, C, H, W) -> same."""

    def __init__(self, channels: int, kernel: int, bias: bool) -> None:
        super().__init__()

        def depthwise() -> nn.Conv2d:
            return nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=bias)

        self.dense_depth_1 = depthwise()
        self.dense_point_1 = nn.Conv2d(channels, channels, 1)
        self.dense_depth_2 = depthwise()
        self.dense_point_2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x
        for conv in (self.dense_depth_1, self.dense_point_1, self.dense_depth_2, self.dense_point_2):
            t = x + F.gelu(conv(t))
        return t


class LaKDNet(LevelUNet):
    """LaKDNet; parameter names are the authors'.

    Shapes: x (B, in_chans, H, W), H and W multiples of 8 -> (B, 3, H, W) in [0, 1]. The
    dual-pixel net also takes cat(L, R) (B, 6, H, W) and appends C = (L + R) / 2 itself, tile by
    tile, so callers feed it like every other pair network.
    """

    memory_per_width = 7.2  # 9.8 KB/px at width 32 vs BaMBNet's 2.7 KB/px at width 64

    def __init__(self, cfg: LaKDNetCfg = LaKDNetCfg()) -> None:
        def block(level: int, channels: int) -> nn.Module:
            return Block(channels, LargeKernelMixer(channels, cfg.kernel_sizes[level], cfg.bias), "mixer",
                         cfg.ffn_expansion, cfg.bias, cfg.norm, ffn_skip_from_input=True)

        super().__init__(cfg, block, "embed")
        self.output = nn.Conv2d(cfg.width * 2, cfg.out_chans, 3, padding=1, bias=cfg.bias)
        # convolutional: tiles of 256 px with 64 px overlap stayed 81 dB (dual) / 56 dB (single) or
        # more from the full frame on the Canon dev scenes (benchmarks/bench_published.py --part tiles)
        self.tiling = TilingSpec(multiple_of=self.multiple_of, tile=512, overlap=64)
        # below 256 px the overlap is most of the work (a 24 MP frame's buffers leave the 2 GiB
        # budget room for 136 px tiles only: 4.6 k tiles, 2.5 x the work of 256 px tiles)
        self.min_tile = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.dual_pixel and x.shape[1] == self.cfg.in_chans - 3:
            x = torch.cat([x, (x[:, :3] + x[:, 3:6]) / 2], dim=1)
        y, _ = self.features(x)
        return (self.out_conv(self.output, y) + x[:, -self.cfg.out_chans:].float()).clamp(0, 1)


def infer_cfg(state_dict: Mapping[str, torch.Tensor]) -> LaKDNetCfg:
    """Configuration from an (authors'-named) state dict's shapes: width, depths, kernel sizes,
    FFN width, LayerNorm kind, bias; dual-pixel when it takes 9 channels."""
    base = base_cfg_from(state_dict, "embed.weight")
    kernels = tuple(int(state_dict[f"{p}.0.mixer.dense_depth_1.weight"].shape[-1])
                    for p in ("encoder_level1", "encoder_level2", "encoder_level3", "latent"))
    return LaKDNetCfg(**base, kernel_sizes=kernels, dual_pixel=base["in_chans"] > 3)


def looks_like(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for LaKDNet's key format."""
    return "embed.weight" in state_dict and "encoder_level1.0.mixer.dense_depth_1.weight" in state_dict


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """(architecture, config kwargs) of a LaKDNet state dict, or None when it is not one."""
    if not looks_like(state_dict):
        return None
    cfg = infer_cfg(state_dict)
    size = "l" if cfg.width >= 48 else "s"
    return f"lakdnet_{size}_{'dual' if cfg.dual_pixel else 'single'}", asdict(cfg)


CONFIGS = {
    # the authors' released configurations: "network_s" (17.7 M parameters dual) and "network_l" (width 48)
    "lakdnet_s_dual": LaKDNetCfg(in_chans=9),
    "lakdnet_s_single": LaKDNetCfg(in_chans=3, dual_pixel=False),
    "lakdnet_l_dual": LaKDNetCfg(in_chans=9, width=48),
    "lakdnet_l_single": LaKDNetCfg(in_chans=3, width=48, dual_pixel=False),
    # tiny, for tests (the reference folders' reduced configuration)
    "lakdnet_dual_test": LaKDNetCfg(in_chans=9, width=8, depths=(1, 1, 1, 2)),
    "lakdnet_single_test": LaKDNetCfg(in_chans=3, width=8, depths=(1, 1, 1, 2), dual_pixel=False),
}


register_family(Family(
    name="lakdnet", paper=_PAPER, defaults={"deblur_pair": "lakdnet_s_dual", "deblur_single": "lakdnet_s_single"},
    official_keys=looks_like, infer_arch=infer_arch, official_colour_order="RGB",
    weights_source="github.com/lingyanruan/LaKDNet (train_on_dpdd_[dual_]s.pth, train_on_dpdd_[dual_]l.pth)",
    licence="AGPL-3.0", ships_weights=False))


def _create(name: str, kwargs: dict) -> LaKDNet:
    return LaKDNet(replace(CONFIGS[name], **kwargs) if kwargs else CONFIGS[name])


def _dual(**info):
    return register_model(family="lakdnet", task="deblur_pair", recipe="LR", official_recipe="LRC",
                          paper=_PAPER, **info)


def _single(**info):
    return register_model(family="lakdnet", task="deblur_single", recipe="C", official_recipe="C",
                          paper=_PAPER, **info)


@_dual(cfg=CONFIGS["lakdnet_s_dual"])
def lakdnet_s_dual(**kwargs) -> LaKDNet:
    """Dual-pixel LaKDNet-S (width 32, blocks 8/12/12/16, 9x9 kernels): the authors' release."""
    return _create("lakdnet_s_dual", kwargs)


@_single(cfg=CONFIGS["lakdnet_s_single"])
def lakdnet_s_single(**kwargs) -> LaKDNet:
    """Single-image LaKDNet-S: the authors' release."""
    return _create("lakdnet_s_single", kwargs)


@_dual(cfg=CONFIGS["lakdnet_l_dual"])
def lakdnet_l_dual(**kwargs) -> LaKDNet:
    """Dual-pixel LaKDNet-L (width 48): the authors' release."""
    return _create("lakdnet_l_dual", kwargs)


@_single(cfg=CONFIGS["lakdnet_l_single"])
def lakdnet_l_single(**kwargs) -> LaKDNet:
    """Single-image LaKDNet-L (width 48): the authors' release."""
    return _create("lakdnet_l_single", kwargs)


@_dual(cfg=CONFIGS["lakdnet_dual_test"])
def lakdnet_dual_test(**kwargs) -> LaKDNet:
    """Tiny dual-pixel LaKDNet for tests."""
    return _create("lakdnet_dual_test", kwargs)


@_single(cfg=CONFIGS["lakdnet_single_test"])
def lakdnet_single_test(**kwargs) -> LaKDNet:
    """Tiny single-image LaKDNet for tests."""
    return _create("lakdnet_single_test", kwargs)
