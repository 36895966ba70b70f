"""BlurNet (ours): where one photo is visibly out of focus.

A small U-Net that reads a single image and returns, per pixel, the probability that it is visibly
out of focus: that the scene there had detail which the defocus blur took away. It is trained where
the answer shows (detail present and blurred by at least 1.5 px; crisp detail in focus) and left
free elsewhere: a flat region has nothing to undo, in focus or not. A single photo carries no sign
of the defocus and no reliable radius in flat regions; this needs neither.

It is the single-image counterpart of the dual-pixel focus gate (:func:`dpcli.optics.focus_gate`):
a deblurring entry whose manifest names it (the post step ``blur_gate:ARCH.TAG``,
:mod:`dpcli.methods.post`) keeps its correction only where BlurNet sees blur, so a sharp photo and
the in-focus parts of a blurred one come back unchanged.

Trained by ``dpdeblur train blurnet`` on the synthetic corpus; no paper, no authors' weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dpcli.models.registry import Family, register_family, register_model
from dpcli.tiling import TilingSpec

_PAPER = "ours (the blur gate)"

# The blur gate the engine makes of BlurNet's probability (dpcli.optics.ramp_gate): closed up to LOW,
# open from HIGH, the open gate dilated and smoothed over SPREAD px. No BlurNet weights ship yet (the
# attempts: docs/benchmarks.md, "Correction gate").
GATE_SETTINGS = dict(low=0.3, high=0.7, spread=4)


@dataclass(frozen=True)
class BlurNetCfg:
    """in_chans: image channels; widths: channels per level (each level halves the resolution);
    depth: 3x3 convolutions per level."""

    in_chans: int = 3
    widths: tuple[int, ...] = (16, 32, 64)
    depth: int = 2


def _convs(cin: int, cout: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class BlurNet(nn.Module):
    """Shapes: image (B, in_chans, H, W) in [0, 1] (sRGB values) -> probability that each pixel is
    visibly out of focus (B, 1, H, W). Any H, W."""

    def __init__(self, cfg: BlurNetCfg = BlurNetCfg()) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.multiple_of = 2 ** (len(w) - 1)
        self.enc = nn.ModuleList([_convs(cfg.in_chans if i == 0 else w[i], w[i], cfg.depth) for i in range(len(w))])
        self.down = nn.ModuleList([nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1) for i in range(len(w) - 1)])
        self.dec = nn.ModuleList([_convs(w[i] + w[i + 1], w[i], cfg.depth) for i in range(len(w) - 1)])
        self.head = nn.Conv2d(w[0], 1, 3, padding=1)
        # context matters (a flat patch is as sharp as what surrounds it): large tiles, wide overlap
        self.tiling = TilingSpec(multiple_of=self.multiple_of, tile=512, overlap=64)
        self.supports_bf16 = True
        self.gate_settings = dict(GATE_SETTINGS)

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """The probability (B, 1, H, W); ``logits``: what the head computes (the training loss is
        taken there)."""
        h = x - 0.5
        skips = []
        for i, block in enumerate(self.enc):
            h = block(h)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        for i in reversed(range(len(self.dec))):
            h = F.interpolate(h, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            h = self.dec[i](torch.cat([skips[i], h], 1))
        z = self.head(h).float()
        return z if logits else torch.sigmoid(z)


CONFIGS = {
    "blurnet_small": BlurNetCfg(),
    "blurnet_test": BlurNetCfg(widths=(4, 8), depth=1),
}


def infer_arch(state_dict) -> tuple[str, dict] | None:
    """(architecture, config) from a state dict's shapes; None when it is not a BlurNet."""
    if "head.weight" not in state_dict or "enc.0.0.weight" not in state_dict:
        return None
    widths = tuple(int(state_dict[f"enc.{i}.0.weight"].shape[0]) for i in range(8) if f"enc.{i}.0.weight" in state_dict)
    depth = sum(1 for k in state_dict if k.startswith("enc.0.") and k.endswith(".weight"))
    cfg = {"in_chans": int(state_dict["enc.0.0.weight"].shape[1]), "widths": widths, "depth": depth}
    for name, known in CONFIGS.items():
        if (known.in_chans, known.widths, known.depth) == (cfg["in_chans"], widths, depth):
            return name, {}
    return "blurnet_small", cfg


register_family(Family(
    name="blurnet", paper=_PAPER, defaults={"blur": "blurnet_small"}, infer_arch=infer_arch,
    training="dpcli.train.blurnet", licence="MIT (ours)"))


def _create(name: str, kwargs: dict) -> BlurNet:
    from dataclasses import replace

    return BlurNet(replace(CONFIGS[name], **kwargs))


@register_model(family="blurnet", task="blur", recipe="C", official_recipe="C", paper=_PAPER,
                cfg=CONFIGS["blurnet_small"])
def blurnet_small(**kwargs) -> BlurNet:
    """Where one image is visibly out of focus (widths 16/32/64, ~90k parameters)."""
    return _create("blurnet_small", kwargs)


@register_model(family="blurnet", task="blur", recipe="C", official_recipe="C", paper=_PAPER,
                cfg=CONFIGS["blurnet_test"])
def blurnet_test(**kwargs) -> BlurNet:
    """Tiny BlurNet for tests."""
    return _create("blurnet_test", kwargs)
