"""Restormer for defocus deblurring (dual-pixel and single image).

Paper: Zamir, Arora, Khan, Hayat, Khan, Yang, "Restormer: Efficient Transformer for
High-Resolution Image Restoration", CVPR 2022. The authors release DPDD-trained checkpoints
(github.com/swz30/Restormer, Defocus_Deblurring; their academic, non-commercial licence applies
to code and weights; dpdeblur never ships them). This is our own implementation from the paper,
checked against the authors' class on ``/work/shared/reference/restormer_*`` (tests/models).

The token mixer is multi-Dconv head transposed attention (MDTA): q, k, v from a 1x1 conv and a
3x3 depthwise conv; per head, q and k are L2-normalised over the pixels and a C/h x C/h
attention map softmax(q k^T * temperature) mixes the channels of v. Attention spans the whole
image, so tiles change the function (benchmarks/bench_published.py measures by how much).
Dual-pixel: input cat(L, R), output = conv(refined + skip_conv(embedding)). Single image:
output = conv(refined) + input. Both in RGB order, [0, 1]; the authors' test clamps to [0, 1].
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

_PAPER = "Restormer (Zamir et al., CVPR 2022)"


@dataclass(frozen=True)
class RestormerCfg(LevelNetCfg):
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)


class ChannelAttention(nn.Module):
    """MDTA: attention across channels within each of ``heads`` groups.

    Shapes: (B, C, H, W) -> (B, C, H, W); the attention map is (B, heads, C/heads, C/heads).
    """

    def __init__(self, channels: int, heads: int, bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(channels * 3, channels * 3, 3, padding=1, groups=channels * 3, bias=bias)
        self.project_out = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q, k = F.normalize(q.float(), dim=-1), F.normalize(k.float(), dim=-1)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.temperature.float(), dim=-1)
        out = (attn.to(v.dtype) @ v).reshape(b, c, h, w)
        return self.project_out(out)


class Restormer(LevelUNet):
    """Restormer; parameter names are the authors'.

    Shapes: x (B, in_chans, H, W), H and W multiples of 8 -> (B, 3, H, W) (not clamped).
    """

    memory_per_width = 5.7  # 11.6 KB/px at width 48 vs BaMBNet's 2.7 KB/px at width 64

    def __init__(self, cfg: RestormerCfg = RestormerCfg()) -> None:
        def block(level: int, channels: int) -> nn.Module:
            return Block(channels, ChannelAttention(channels, cfg.heads[level], cfg.bias), "attn",
                         cfg.ffn_expansion, cfg.bias, cfg.norm)

        super().__init__(cfg, block, "patch_embed.proj")
        w = cfg.width
        if cfg.dual_pixel:
            self.skip_conv = nn.Conv2d(w, w * 2, 1, bias=cfg.bias)
        self.output = nn.Conv2d(w * 2, cfg.out_chans, 3, padding=1, bias=cfg.bias)
        # attention spans the frame, so no overlap makes tiles exact; tiles of 512 px (overlap 128)
        # kept the output within 0.05 dB of the full frame on the Canon dev scenes, 384 px did not
        # (benchmarks/bench_published.py --part tiles): the tile planner never goes below min_tile
        self.tiling = TilingSpec(multiple_of=self.multiple_of, tile=512, overlap=128)
        self.min_tile = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, e1 = self.features(x)
        if self.cfg.dual_pixel:
            return self.out_conv(self.output, y + self.skip_conv(e1))
        return self.out_conv(self.output, y) + x[:, -self.cfg.out_chans:].float()


def infer_cfg(state_dict: Mapping[str, torch.Tensor]) -> RestormerCfg:
    """Configuration from an (authors'-named) state dict's shapes: width, depths, heads, FFN
    width, LayerNorm kind, bias, dual-pixel or single."""
    base = base_cfg_from(state_dict, "patch_embed.proj.weight")
    heads = tuple(int(state_dict[f"{p}.0.attn.temperature"].shape[0])
                  for p in ("encoder_level1", "encoder_level2", "encoder_level3", "latent"))
    return RestormerCfg(**base, heads=heads, dual_pixel="skip_conv.weight" in state_dict)


def looks_like(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for Restormer's key format."""
    return "patch_embed.proj.weight" in state_dict and "encoder_level1.0.attn.qkv.weight" in state_dict


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, dict] | None:
    """(architecture, config kwargs) of a Restormer state dict, or None when it is not one."""
    if not looks_like(state_dict):
        return None
    cfg = infer_cfg(state_dict)
    return ("restormer_dual" if cfg.dual_pixel else "restormer_single"), asdict(cfg)


CONFIGS = {
    # the authors' released configurations (26.1 M parameters)
    "restormer_dual": RestormerCfg(in_chans=6, dual_pixel=True),
    "restormer_single": RestormerCfg(in_chans=3, dual_pixel=False),
    # tiny, for tests (the reference folders' reduced configuration)
    "restormer_dual_test": RestormerCfg(in_chans=6, width=8, depths=(1, 1, 1, 2), refinement=1, heads=(1, 2, 2, 4)),
    "restormer_single_test": RestormerCfg(in_chans=3, width=8, depths=(1, 1, 1, 2), refinement=1,
                                          heads=(1, 2, 2, 4), dual_pixel=False),
}


register_family(Family(
    name="restormer", paper=_PAPER, defaults={"deblur_pair": "restormer_dual", "deblur_single": "restormer_single"},
    official_keys=looks_like, infer_arch=infer_arch, official_colour_order="RGB",
    weights_source="github.com/swz30/Restormer (Defocus_Deblurring: dual_pixel_defocus_deblurring.pth, "
                   "single_image_defocus_deblurring.pth)",
    licence="academic, non-commercial (the authors' licence)", ships_weights=False))


def _create(name: str, kwargs: dict) -> Restormer:
    return Restormer(replace(CONFIGS[name], **kwargs) if kwargs else CONFIGS[name])


@register_model(family="restormer", task="deblur_pair", recipe="LR", official_recipe="LR", paper=_PAPER,
                cfg=CONFIGS["restormer_dual"])
def restormer_dual(**kwargs) -> Restormer:
    """Dual-pixel Restormer (width 48, blocks 4/6/6/8 + 4): the authors' released configuration."""
    return _create("restormer_dual", kwargs)


@register_model(family="restormer", task="deblur_single", recipe="C", official_recipe="C", paper=_PAPER,
                cfg=CONFIGS["restormer_single"])
def restormer_single(**kwargs) -> Restormer:
    """Single-image Restormer (a residual on the input): the authors' released configuration."""
    return _create("restormer_single", kwargs)


@register_model(family="restormer", task="deblur_pair", recipe="LR", official_recipe="LR", paper=_PAPER,
                cfg=CONFIGS["restormer_dual_test"])
def restormer_dual_test(**kwargs) -> Restormer:
    """Tiny dual-pixel Restormer for tests."""
    return _create("restormer_dual_test", kwargs)


@register_model(family="restormer", task="deblur_single", recipe="C", official_recipe="C", paper=_PAPER,
                cfg=CONFIGS["restormer_single_test"])
def restormer_single_test(**kwargs) -> Restormer:
    """Tiny single-image Restormer for tests."""
    return _create("restormer_single_test", kwargs)
