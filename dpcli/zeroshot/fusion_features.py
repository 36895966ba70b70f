"""Per-pixel features of a stage-1 layer stack for the learned layer fusion (issue 18).

ONE function, :func:`fusion_features`, computes them; training (``dpcli.zeroshot.fusion_train``)
and inference (:func:`dpcli.zeroshot.fusion_net.learned_weights`) both call it, so the network
sees the same numbers in both. The features are physics of the stack, not appearance, and are
scale-free (ratios and logs relative to the scene's mean level), so one network serves dark and
bright, grey and colour scenes and any layer count:

per layer i (at 1/``scale`` resolution, box means over 1, 3, 7, 15 low-res px = 4..60 px):
  - log of the L/R reblur residual relative to the best layer's, at four scales (what the
    residual choice softmins), and its rank among the layers;
  - log of the left over the right view's residual (which view the layer explains worse);
  - log of the layer image's local gradient power over the combined view's, at two scales
    (too small a radius leaves the layer blurred, too large rings);
  - overshoot: how far the layer leaves the combined view's local [min, max] range (ringing);
  - the layer's signed radius (px / 10) and the residual choice's weight for it;
shared by all layers: the combined view's local gradient power and level, and the best layer's
residual level at two scales (noise and texture context).

The residual choice's logits (:func:`dpcli.zeroshot.fusion.residual_weights`) are returned at full
resolution too: the network only adds a correction to them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dpcli.optics.windows import box_mean

__all__ = ["FusionFeatures", "fusion_features", "LAYER_FEATURES", "SHARED_FEATURES", "FEATURE_SCALE"]

FEATURE_SCALE = 4  # the fusion network runs at 1/4 resolution (the oracle's choice varies over ~15 px)
_RADII = (0, 1, 3, 7)  # box radii at low resolution: windows of 1, 3, 7, 15 low-res px
LAYER_FEATURES = 11
SHARED_FEATURES = 5


@dataclass
class FusionFeatures:
    """Features of one layer stack.

    Attributes:
        layer: (L, LAYER_FEATURES, h, w) per-layer features at low resolution (h = ceil(H / scale)).
        shared: (SHARED_FEATURES, h, w) features common to all layers.
        base_logits: (L, H, W) full-resolution logits of the residual choice (softmax of them is
            ``residual_weights``), floored at log(1e-12).
        scale: the low-resolution factor.
    """

    layer: torch.Tensor
    shared: torch.Tensor
    base_logits: torch.Tensor
    scale: int

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.base_logits.shape[-2:])


def _pool(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(..., H, W) -> (..., ceil(H/s), ceil(W/s)) area mean (partial cells average what they hold)."""
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    y = F.avg_pool2d(x.reshape(-1, 1, h, w), scale, scale, ceil_mode=True, count_include_pad=False)
    return y.reshape(*lead, *y.shape[-2:])


def _grad_power(x: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) -> (..., H, W) squared forward differences, channels averaged."""
    gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return (gx.square() + gy.square()).mean(-3)


def _local_range(x: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) -> local min and max over a (2r+1)^2 box, each (C, H, W)."""
    k, r = 2 * radius + 1, radius

    def box_max(y: torch.Tensor) -> torch.Tensor:  # separable: a square max is a max of row maxima
        return F.max_pool2d(F.max_pool2d(y[None], (1, k), 1, (0, r)), (k, 1), 1, (r, 0))[0]

    return -box_max(-x), box_max(x)


@torch.no_grad()
def fusion_features(left: torch.Tensor, right: torch.Tensor, latent: torch.Tensor, blur_left: torch.Tensor,
                    blur_right: torch.Tensor, radii: torch.Tensor, windows: tuple[int, ...] = (15, 31, 61),
                    temperature: float = 0.6, scale: int = FEATURE_SCALE) -> FusionFeatures:
    """Features of a stage-1 stack for :class:`dpcli.zeroshot.fusion_net.FusionNet`.

    Args:
        left, right: (C, H, W) linear views (our orientation).
        latent, blur_left, blur_right: (L, C, H, W) stage-1 layers and their reblurred views
            (:class:`dpcli.zeroshot.init.LayerStack`), any float dtype.
        radii: (L,) signed layer radii in px.
        windows, temperature: the residual choice whose logits are ``base_logits``.
        scale: low-resolution factor of the per-layer features.

    Returns:
        :class:`FusionFeatures`.
    """
    from dpcli.zeroshot.fusion import residual_weights

    left, right = left.float(), right.float()
    n_layers = latent.shape[0]
    base = residual_weights(left, right, blur_left, blur_right, windows, temperature)
    base_logits = base.clamp_min(1e-12).log()
    comb = (left + right) / 2
    m = float(comb.mean().clamp_min(1e-6))
    m2 = m * m
    g_comb = _pool(_grad_power(comb), scale)
    lo, hi = _local_range(comb, 2 * scale)
    el, er, gl, ov = [], [], [], []
    for i in range(n_layers):  # one layer at a time: full-resolution temporaries stay small
        x = latent[i].float()
        el.append(_pool((blur_left[i].float() - left).square().mean(0), scale))
        er.append(_pool((blur_right[i].float() - right).square().mean(0), scale))
        gl.append(_pool(_grad_power(x), scale))
        ov.append(_pool((F.relu(x - hi) + F.relu(lo - x)).mean(0), scale))
    el_t, er_t, gl_t, ov_t = (torch.stack(t) for t in (el, er, gl, ov))  # (L, h, w)
    e_t = (el_t + er_t) / m2
    eps = 1e-8
    res = [box_mean(e_t, r) + eps for r in _RADII]  # (L, h, w) each
    rel = [torch.log(e / e.min(0, keepdim=True).values) for e in res]
    rank = res[1].argsort(0).argsort(0).float() / max(n_layers - 1, 1)
    lr_bal = torch.log((box_mean(el_t, 1) / m2 + eps) / (box_mean(er_t, 1) / m2 + eps))
    contrast = [torch.log((box_mean(gl_t, r) / m2 + 1e-7) / (box_mean(g_comb, r) / m2 + 1e-7)) for r in (0, 1)]
    over = torch.log(box_mean(ov_t, 1) / m + 1e-3)
    h, w = e_t.shape[-2:]
    rad = (radii.float().to(e_t.device) / 10).view(-1, 1, 1).expand(-1, h, w)
    choice = _pool(base, scale)
    layer = torch.stack(rel + [rank, lr_bal] + contrast + [over, rad, choice], 1)
    best = [torch.log(e.min(0).values) for e in (res[0], res[2])]
    shared = torch.stack([torch.log(box_mean(g_comb, r) / m2 + 1e-7) for r in (0, 1)]
                         + [torch.log(_pool(comb.mean(0), scale) / m + 1e-3)] + best)
    return FusionFeatures(layer=layer.contiguous(), shared=shared.contiguous(), base_logits=base_logits, scale=scale)
