"""BaMBNet: blur-aware multi-branch network for dual-pixel defocus deblurring.

Paper: Liang, Jiang et al., "BaMBNet: A Blur-aware Multi-branch Network for Dual-pixel Defocus
Deblurring", IEEE/CAA J. Autom. Sinica 2022 (``002_*``). Authors' code and DPDD-trained weights:
github.com/junjun-jiang/BaMBNet (their licence applies to their weights). This is our own
implementation; `checkpoint_filter_fn` maps the authors' state-dict names onto ours and
tests/models/test_official_parity.py proves both compute the same function.

Two networks share one body (head 3x3 conv + ReLU, 4-branch 8-stage U-Net, tail 3x3 conv):
* the deblurring net: input cat(L, R) (6 ch), output sigmoid AiF image; during training the
  branch outputs of the last stage are weighted by defocus masks cut from a COC map with
  thresholds r1..r5 = 0, 1.9, 4.2, 6.2 px, +inf, with a weight annealed as
  exp(-(2 it / 2e4)^2) and switched off after 2e4 iterations, so inference needs only the pair;
* the COC (blur-amount) net: same body, no sigmoid, signed COC radius clamped to +-24 px.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from dpcli.models.blocks import (
    ConvAct,
    MultiBranchUNet,
    check_multiple,
    defocus_masks,
    full_precision,
    guided_sum,
    mask_weight,
)
from dpcli.models.registry import Family, register_family, register_model
from dpcli.tiling import TilingSpec


@dataclass(frozen=True)
class BaMBNetCfg:
    """Hyper-parameters. ``branches`` as in the authors' code: 1 = 1x1 branch, 3n+1 = n RCABs."""

    task: str = "deblur"  # "deblur" (sigmoid AiF) | "coc" (signed radius, clamped)
    in_chans: int = 6  # cat(left, right)
    out_chans: int = 3
    width: int = 64
    branches: tuple[int, ...] = (1, 4, 7, 10)
    reduction: int = 16
    thresholds: tuple[float, ...] = (0.0, 1.9, 4.2, 6.2)  # one lower bound per branch, last open
    anneal_iters: float = 2e4
    coc_clamp: float = 24.0
    # ours (1 = the authors'): a COC net's tail predicts radius / coc_scale, so Adam's ~lr-sized
    # weight steps move the map by coc_scale times more px; from scratch the map crawls otherwise
    coc_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.task not in ("deblur", "coc"):
            raise ValueError(f"task must be 'deblur' or 'coc', got {self.task!r}")
        if self.task == "deblur" and len(self.thresholds) != len(self.branches):
            raise ValueError(f"{len(self.branches)} branches need {len(self.branches)} thresholds, "
                             f"got {self.thresholds}")


class BaMBNet(nn.Module):
    """BaMBNet deblurring or COC network.

    Args:
        cfg: BaMBNetCfg.
    Shapes: x (B, in_chans, H, W), H and W multiples of 16 -> (B, out_chans, H, W).
    """

    multiple_of = 16

    def __init__(self, cfg: BaMBNetCfg = BaMBNetCfg()) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = ConvAct(cfg.in_chans, cfg.width)
        self.body = MultiBranchUNet(cfg.width, cfg.branches, cfg.reduction)
        self.tail = nn.Conv2d(cfg.width, cfg.out_chans, 3, padding=1)
        self.tiling = TilingSpec(multiple_of=self.multiple_of)
        self.supports_bf16 = True

    def guide_weight(self, iteration: int) -> float:
        """Mask-guidance weight at a training iteration (0 = masks off)."""
        return mask_weight(iteration, self.cfg.anneal_iters)

    def forward(
        self, x: torch.Tensor, coc: torch.Tensor | None = None, guide_weight: float = 0.0
    ) -> torch.Tensor:
        """Deblur (or estimate COC for) a DP pair.

        Args:
            x: (B, in_chans, H, W) cat(left, right) in [0, 1].
            coc: optional (B, C, H, W) signed COC map (px) that builds the defocus masks;
                only the deblurring net uses it, and only while ``guide_weight > 0``.
            guide_weight: annealed mask weight (``self.guide_weight(iteration)``); 0 at inference.
        """
        check_multiple(x, self.multiple_of, type(self).__name__)
        feat = self.stem(x)
        masks = None
        if coc is not None and guide_weight > 0 and self.cfg.task == "deblur":
            masks = defocus_masks(coc, self.cfg.thresholds)
        if masks is None:
            res = self.body.forward_sum(feat)
        else:
            pyr = self.body.pyramid(feat)
            res = guided_sum([self.body.branch(feat, b, pyr=pyr) for b in range(len(self.cfg.branches))],
                             masks, guide_weight)
        out = full_precision(self.tail, res.add_(feat) if not torch.is_grad_enabled() else res + feat)
        if self.cfg.task == "deblur":
            return torch.sigmoid(out)
        if self.cfg.coc_scale != 1.0:
            out = out * self.cfg.coc_scale
        return out.clamp(-self.cfg.coc_clamp, self.cfg.coc_clamp)


# --- the authors' checkpoints -------------------------------------------------------------------

_RCAB_PARTS = {"0": "conv1", "2": "conv2", "3.conv_du.0": "ca.reduce", "3.conv_du.2": "ca.expand"}


def convert_official_body_key(key: str) -> str | None:
    """Authors' ``layerN.b...`` name -> ours (``body.stages.N-1.b...``); None if not a body key."""
    m = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", key)
    if not m:
        return None
    stage, branch, rest = int(m.group(1)) - 1, m.group(2), m.group(3)
    prefix = f"body.stages.{stage}.{branch}."
    if (pw := re.fullmatch(r"0\.(weight|bias)", rest)):  # 1x1 branch: Sequential(conv, relu)
        return prefix + "conv." + pw.group(1)
    if (rc := re.fullmatch(r"0\.body\.(\d+)\.body\.(.+)\.(weight|bias)", rest)):  # RCAB i
        part = _RCAB_PARTS.get(rc.group(2))
        if part is None:
            return None
        return prefix + f"group.blocks.{rc.group(1)}.{part}.{rc.group(3)}"
    if (gc := re.fullmatch(r"0\.body\.(\d+)\.(weight|bias)", rest)):  # group's closing conv
        return prefix + "group.conv." + gc.group(2)
    return None


def is_official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("tail_hard.") for k in state_dict)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None
                         ) -> dict[str, torch.Tensor]:
    """Rename the authors' keys (``head.0``, ``layerN.b...``, ``tail_hard.0``) to ours.

    Our own checkpoints pass through unchanged. Unknown keys are kept as they are so that the
    strict load that follows names them.
    """
    if not is_official_state_dict(state_dict):
        return dict(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = convert_official_body_key(key)
        if new is None:
            new = re.sub(r"^head\.0\.", "stem.conv.", key)
            new = re.sub(r"^tail_hard\.0\.", "tail.", new)
        out[new] = value
    return out


def infer_cfg(state_dict: Mapping[str, torch.Tensor], task: str) -> BaMBNetCfg:
    """Read width, input channels and branch sizes from tensor shapes (our key names)."""
    w = state_dict["stem.conv.weight"]
    branches = []
    b = 0
    while f"body.stages.0.{b}.conv.weight" in state_dict or f"body.stages.0.{b}.group.conv.weight" in state_dict:
        n = 0
        while f"body.stages.0.{b}.group.blocks.{n}.conv1.weight" in state_dict:
            n += 1
        branches.append(1 if n == 0 else 3 * n + 1)
        b += 1
    width = int(w.shape[0])
    reduction = 16
    key = next((k for k in state_dict if k.endswith("ca.reduce.weight")), None)
    if key is not None:
        reduction = max(1, width // int(state_dict[key].shape[0]))
    defaults = BaMBNetCfg()
    thresholds = defaults.thresholds if len(branches) == len(defaults.thresholds) else \
        tuple(float(t) for t in torch.linspace(0, 6.2, len(branches)).tolist())
    return BaMBNetCfg(task=task, in_chans=int(w.shape[1]), out_chans=int(state_dict["tail.weight"].shape[0]),
                      width=width, branches=tuple(branches), reduction=reduction, thresholds=thresholds)


CONFIGS: dict[str, BaMBNetCfg] = {
    # the paper's networks (4,497,731 parameters each)
    "bambnet_deblur": BaMBNetCfg(task="deblur"),
    "bambnet_coc": BaMBNetCfg(task="coc"),
    # CPU-trainable: width 32, same branches (about a quarter of the compute)
    "bambnet_deblur_small": BaMBNetCfg(task="deblur", width=32),
    "bambnet_coc_small": BaMBNetCfg(task="coc", width=32),
    # tiny, for tests
    "bambnet_deblur_test": BaMBNetCfg(task="deblur", width=8, branches=(1, 4), reduction=4,
                                      thresholds=(0.0, 3.0)),
    "bambnet_coc_test": BaMBNetCfg(task="coc", width=8, branches=(1, 4), reduction=4, thresholds=(0.0, 3.0)),
}


# --- registry entrypoints ------------------------------------------------------------------------

_PAPER = "BaMBNet (Liang, Jiang et al. 2022)"

register_family(Family(
    name="bambnet", paper=_PAPER, defaults={"deblur_pair": "bambnet_deblur", "coc": "bambnet_coc"},
    official_keys=is_official_state_dict, checkpoint_filter=checkpoint_filter_fn, official_colour_order="BGR",
    training="dpcli.train.bambnet", weights_source="github.com/junjun-jiang/BaMBNet (DPDD deblurring net)",
    licence="the authors' terms", coc_shares_keys=True))


def _create(name: str, **kwargs) -> BaMBNet:
    from dataclasses import replace

    return BaMBNet(replace(CONFIGS[name], **kwargs) if kwargs else CONFIGS[name])


@register_model(family="bambnet", task="deblur_pair", recipe="LR", official_recipe="LRR", paper=_PAPER,
                cfg=CONFIGS["bambnet_deblur"])
def bambnet_deblur(**kwargs) -> BaMBNet:
    """Paper-size deblurring net (width 64, branches 1/4/7/10): the authors' released architecture."""
    return _create("bambnet_deblur", **kwargs)


@register_model(family="bambnet", task="deblur_pair", recipe="LR", official_recipe="LRR", paper=_PAPER,
                cfg=CONFIGS["bambnet_deblur_small"])
def bambnet_deblur_small(**kwargs) -> BaMBNet:
    """Width-32 deblurring net, trainable on CPUs."""
    return _create("bambnet_deblur_small", **kwargs)


@register_model(family="bambnet", task="deblur_pair", recipe="LR", official_recipe="LRR", paper=_PAPER,
                cfg=CONFIGS["bambnet_deblur_test"])
def bambnet_deblur_test(**kwargs) -> BaMBNet:
    """Tiny deblurring net for tests."""
    return _create("bambnet_deblur_test", **kwargs)


@register_model(family="bambnet", task="coc", recipe="LR", official_recipe="LR", paper=_PAPER,
                cfg=CONFIGS["bambnet_coc"])
def bambnet_coc(**kwargs) -> BaMBNet:
    """Paper-size COC (blur amount) net: signed radius in px, clamped to +-24."""
    return _create("bambnet_coc", **kwargs)


@register_model(family="bambnet", task="coc", recipe="LR", official_recipe="LR", paper=_PAPER,
                cfg=CONFIGS["bambnet_coc_small"])
def bambnet_coc_small(**kwargs) -> BaMBNet:
    """Width-32 COC net, trainable on CPUs."""
    return _create("bambnet_coc_small", **kwargs)


@register_model(family="bambnet", task="coc", recipe="LR", official_recipe="LR", paper=_PAPER,
                cfg=CONFIGS["bambnet_coc_test"])
def bambnet_coc_test(**kwargs) -> BaMBNet:
    """Tiny COC net for tests."""
    return _create("bambnet_coc_test", **kwargs)
