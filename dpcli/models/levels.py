"""The four-level encoder-decoder shared by Restormer and LaKDNet, and its small parts.

Both papers use the same skeleton around different token mixers (Restormer: channel attention,
``002``-style U-Net of Zamir et al., CVPR 2022; LaKDNet: large-kernel depthwise mixing, Ruan et
al. 2023): a 3x3 embedding conv; encoder levels of ``depths[i]`` blocks at width ``w * 2**i``
joined by pixel-unshuffle downsampling (3x3 conv to half the channels, then 2x2 space-to-depth);
a latent level; decoder levels joined by pixel-shuffle upsampling, each concatenating the
encoder's features of its level (levels 3 and 2 reduce the doubled channels with a 1x1 conv,
level 1 keeps ``2w``); optional refinement blocks; a 3x3 output conv. A block is
``x + mixer(norm1(x))`` then ``x + ffn(norm2(x))`` with a per-pixel LayerNorm over channels and
the gated depthwise feed-forward net (GDFN). Module names follow the authors' state dicts, so
their checkpoints load as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dpcli.models.blocks import check_multiple, full_precision

NORM_KINDS = ("WithBias", "BiasFree")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of every pixel.

    ``WithBias``: (x - mean) / sqrt(var + 1e-5) * weight + bias. ``BiasFree`` (Restormer's
    variant): x / sqrt(var + 1e-5) * weight, the variance still taken about the mean.
    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, kind: str = "WithBias") -> None:
        super().__init__()
        if kind not in NORM_KINDS:
            raise ValueError(f"LayerNorm kind must be one of {NORM_KINDS}, got {kind!r}")
        self.kind = kind
        self.body = _NormParams(channels, kind == "WithBias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        mean = x.mean(1, keepdim=True)
        var = (x - mean).square().mean(1, keepdim=True)
        w = self.body.weight.float()[:, None, None]
        if self.kind == "BiasFree":
            return (x * torch.rsqrt(var + 1e-5) * w).to(dtype)
        return ((x - mean) * torch.rsqrt(var + 1e-5) * w + self.body.bias.float()[:, None, None]).to(dtype)


class _NormParams(nn.Module):
    """Holds ``weight`` (and ``bias``) under the authors' name ``norm.body``."""

    def __init__(self, channels: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None


class GatedDConvFFN(nn.Module):
    """Gated depthwise-conv feed-forward net: 1x1 to 2 x hidden, 3x3 depthwise, GELU(a) * b, 1x1 back.

    hidden = int(channels * expansion). Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class Block(nn.Module):
    """Pre-norm residual block: y = x + mixer(norm1(x)), then y + ffn(norm2(y)) (Restormer) or,
    with ``ffn_skip_from_input``, x + ffn(norm2(y)) (LaKDNet: the mixer reaches the output only
    through the feed-forward net).

    ``mixer_name`` is the authors' attribute name (``attn`` | ``mixer``).
    """

    def __init__(self, channels: int, mixer: nn.Module, mixer_name: str, expansion: float, bias: bool,
                 norm: str, ffn_skip_from_input: bool = False) -> None:
        super().__init__()
        self.ffn_skip_from_input = ffn_skip_from_input
        self.norm1 = ChannelLayerNorm(channels, norm)
        self.mixer_name = mixer_name
        setattr(self, mixer_name, mixer)
        self.norm2 = ChannelLayerNorm(channels, norm)
        self.ffn = GatedDConvFFN(channels, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + getattr(self, self.mixer_name)(self.norm1(x))
        return (x if self.ffn_skip_from_input else y) + self.ffn(self.norm2(y))


class Downsample(nn.Module):
    """3x3 conv to C/2 channels, then 2x2 pixel-unshuffle: (B, C, H, W) -> (B, 2C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv to 2C channels, then 2x2 pixel-shuffle: (B, C, H, W) -> (B, C/2, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@dataclass(frozen=True)
class LevelNetCfg:
    """What both families share (the authors' constructor arguments, our names).

    in_chans: 6 (Restormer dual: cat(L, R)), 9 (LaKDNet dual: cat(L, R, C)) or 3 (single image).
    width: channels of level 1 (``dim``); depths: blocks per level 1-3 and the latent level.
    refinement: blocks after decoder level 1 (``num_refinement_blocks``).
    ffn_expansion: GDFN hidden width = int(channels * ffn_expansion).
    norm: ``WithBias`` | ``BiasFree``. dual_pixel: the authors' ``dual_pixel_task``.
    """

    in_chans: int = 6
    out_chans: int = 3
    width: int = 48
    depths: tuple[int, int, int, int] = (4, 6, 6, 8)
    refinement: int = 4
    ffn_expansion: float = 2.66
    bias: bool = False
    norm: str = "WithBias"
    dual_pixel: bool = True


BlockFactory = Callable[[int, int], nn.Module]  # (level 0-3, channels) -> block


class LevelUNet(nn.Module):
    """The four-level skeleton; ``make_block(level, channels)`` builds one block of a level
    (decoder level 1 and refinement blocks are level 0 at width 2w).

    ``embed_name``: the authors' name of the embedding conv (``patch_embed.proj`` | ``embed``).
    """

    multiple_of = 8
    # peak activation memory per pixel relative to BaMBNet's per channel of width (measured with
    # benchmarks/bench_published.py --memory-probe at 256x256 fp32, paper sizes): the tile planner
    # of dpcli.api counts ``memory_width`` channels
    memory_per_width = 6.0

    def __init__(self, cfg: LevelNetCfg, make_block: BlockFactory, embed_name: str) -> None:
        super().__init__()
        self.cfg = cfg
        w, b = cfg.width, cfg.bias
        embed = nn.Conv2d(cfg.in_chans, w, 3, padding=1, bias=b)
        if "." in embed_name:
            outer, inner = embed_name.split(".")
            holder = nn.Module()
            setattr(holder, inner, embed)
            setattr(self, outer, holder)
        else:
            setattr(self, embed_name, embed)
        self._embed = embed_name

        def level(i: int, channels: int, n: int) -> nn.Sequential:
            return nn.Sequential(*[make_block(i, channels) for _ in range(n)])

        d = cfg.depths
        self.encoder_level1 = level(0, w, d[0])
        self.down1_2 = Downsample(w)
        self.encoder_level2 = level(1, w * 2, d[1])
        self.down2_3 = Downsample(w * 2)
        self.encoder_level3 = level(2, w * 4, d[2])
        self.down3_4 = Downsample(w * 4)
        self.latent = level(3, w * 8, d[3])
        self.up4_3 = Upsample(w * 8)
        self.reduce_chan_level3 = nn.Conv2d(w * 8, w * 4, 1, bias=b)
        self.decoder_level3 = level(2, w * 4, d[2])
        self.up3_2 = Upsample(w * 4)
        self.reduce_chan_level2 = nn.Conv2d(w * 4, w * 2, 1, bias=b)
        self.decoder_level2 = level(1, w * 2, d[1])
        self.up2_1 = Upsample(w * 2)
        self.decoder_level1 = level(0, w * 2, d[0])
        if cfg.refinement:
            self.refinement = level(0, w * 2, cfg.refinement)
        self.supports_bf16 = True

    @property
    def memory_width(self) -> int:
        return int(round(self.cfg.width * self.memory_per_width))

    def embed_conv(self, x: torch.Tensor) -> torch.Tensor:
        module: nn.Module = self
        for part in self._embed.split("."):
            module = getattr(module, part)
        return module(x)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, in_chans, H, W), H, W multiples of 8 -> (decoder features (B, 2w, H, W), embedding)."""
        check_multiple(x, self.multiple_of, type(self).__name__)
        e1 = self.embed_conv(x)
        x1 = self.encoder_level1(e1)
        x2 = self.encoder_level2(self.down1_2(x1))
        x3 = self.encoder_level3(self.down2_3(x2))
        y = self.latent(self.down3_4(x3))
        y = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(y), x3], 1)))
        y = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(y), x2], 1)))
        y = self.decoder_level1(torch.cat([self.up2_1(y), x1], 1))
        if self.cfg.refinement:
            y = self.refinement(y)
        return y, e1

    def out_conv(self, layer: nn.Module, y: torch.Tensor) -> torch.Tensor:
        """The output conv in float32 (bf16 is too coarse for 16-bit images)."""
        return full_precision(layer, y)


# --- reading a configuration from a state dict ------------------------------------------------------

def count_blocks(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of blocks ``prefix.N.`` in a state dict."""
    n = 0
    while any(k.startswith(f"{prefix}.{n}.") for k in state_dict):
        n += 1
    return n


def ffn_expansion_from(state_dict: Mapping[str, torch.Tensor], levels: Mapping[str, int]) -> float:
    """An expansion factor f with int(channels * f) == every level's GDFN hidden width.

    ``levels``: block prefix (``encoder_level1.0``) -> its channels. The authors' values (2.66,
    2.3) are preferred when they fit; else the middle of the interval every level allows.
    """
    hidden = {p: int(state_dict[f"{p}.ffn.project_out.weight"].shape[1]) for p in levels
              if f"{p}.ffn.project_out.weight" in state_dict}
    for f in (2.66, 2.3, 2.0, 4.0):
        if all(int(levels[p] * f) == h for p, h in hidden.items()):
            return f
    lo = max(h / levels[p] for p, h in hidden.items())
    hi = min((h + 1) / levels[p] for p, h in hidden.items())
    f = (lo + hi) / 2
    if not lo < hi or not all(int(levels[p] * f) == h for p, h in hidden.items()):
        raise ValueError("the feed-forward widths fit no single expansion factor")
    return f


def base_cfg_from(state_dict: Mapping[str, torch.Tensor], embed_key: str) -> dict:
    """Fields of :class:`LevelNetCfg` read from tensor shapes (authors' key names)."""
    emb = state_dict[embed_key]
    width = int(emb.shape[0])
    depths = tuple(count_blocks(state_dict, p) for p in ("encoder_level1", "encoder_level2", "encoder_level3",
                                                          "latent"))
    levels = {"encoder_level1.0": width, "encoder_level2.0": width * 2, "encoder_level3.0": width * 4,
              "latent.0": width * 8, "decoder_level1.0": width * 2}
    return dict(in_chans=int(emb.shape[1]), out_chans=int(state_dict["output.weight"].shape[0]), width=width,
                depths=depths, refinement=count_blocks(state_dict, "refinement"),
                ffn_expansion=ffn_expansion_from(state_dict, levels),
                bias=embed_key.replace("weight", "bias") in state_dict,
                norm="WithBias" if "encoder_level1.0.norm1.body.bias" in state_dict else "BiasFree")


__all__ = ["ChannelLayerNorm", "GatedDConvFFN", "Block", "Downsample", "Upsample", "LevelNetCfg", "LevelUNet",
           "count_blocks", "ffn_expansion_from", "base_cfg_from", "NORM_KINDS"]
