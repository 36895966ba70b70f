"""Stage-1 layer fusion: per pixel, which blend of the stage-1 layers is the all-in-focus image.

Methods are registered by name (:func:`register_fusion`) and chosen with
``ZeroShotConfig.fusion`` or :func:`fuse_layers`'s ``method``. ``"residual"`` (ours, the default):
per pixel, a softmin over layers of how badly each layer re-blurs into both views.

A method is a callable ``fn(left, right, stack, cfg) -> weights (L, H, W) | Fusion``: weights that
sum to 1 per pixel (blended here), or a full :class:`Fusion` for a method that also corrects the
blended image. Methods living in optional modules (e.g. a learned fusion in
``dpcli.zeroshot.fusion_net``) register themselves when imported; :data:`PLUGIN_MODULES` are
imported on the first look-up, so they are known by name without an import by the caller.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dpcli.optics.windows import box_mean
from dpcli.zeroshot.config import ZeroShotConfig
from dpcli.zeroshot.fusion_registry import (PLUGIN_MODULES, fusion_methods, get_fusion,  # noqa: F401  (re-exported)
                                            register_fusion)
from dpcli.zeroshot.init import LayerStack

__all__ = ["Fusion", "FusionMethod", "fuse_layers", "register_fusion", "fusion_methods", "blend_layers",
           "defocus_from_weights", "residual_weights", "penalise_overshoot", "PLUGIN_MODULES"]


@dataclass
class Fusion:
    """Result of :func:`fuse_layers`.

    Attributes:
        weights: (L, H, W) float32 per-pixel layer weights, summing to 1 over layers.
        image: (C, H, W) float32 fused all-in-focus image.
        method: the registered name that produced it.
        seconds: time the fusion took.
    """

    weights: torch.Tensor
    image: torch.Tensor
    method: str
    seconds: float = 0.0


FusionMethod = Callable[[torch.Tensor, torch.Tensor, LayerStack, ZeroShotConfig], "torch.Tensor | Fusion"]
def blend_layers(weights: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """sum_i D_i X_i (thesis Eq. 7): (L, H, W) x (L, C, H, W) -> (C, H, W) float32, layer by layer
    (no (L, C, H, W) temporary)."""
    out = torch.zeros(latent.shape[1:], dtype=torch.float32, device=latent.device)
    for i in range(latent.shape[0]):
        out += weights[i] * latent[i].float()
    return out


def defocus_from_weights(weights: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Signed defocus map sum_i r_i D_i in px: (L, H, W) x (L,) -> (H, W)."""
    return (weights * radii.view(-1, 1, 1).to(weights.device)).sum(0)


# the edge-aware residual mean is kept at or above this share of the box mean: a guided filter's
# weights can be negative, and a wrong layer pooled to ~0 beside an edge ties with the right one
# (in-focus Pixel 4 pairs came back at 33-47 dB instead of 66-72 with the mean clipped at 0 only;
# floors 0.1 / 0.25 / 0.5 give the same gain, artefact share 0.0205 / 0.0211 / 0.0220)
GUIDED_FLOOR = 0.25


def residual_weights(left: torch.Tensor, right: torch.Tensor, blur_left: torch.Tensor,
                     blur_right: torch.Tensor, windows: tuple[int, ...] = (15, 31, 61),
                     temperature: float = 0.6, guide_eps: float = 0.0, scale: int = 1) -> torch.Tensor:
    """Soft per-pixel choice of the stage-1 layer that best re-blurs into both views: softmin
    over layers of the local mean squared L/R residual, averaged over several windows (small
    windows follow depth edges, large ones steady flat regions; a window of w px averages
    2 (w // 2) + 1 px), divided by the smallest one at that pixel (scale-free, so one temperature
    fits dark and textured regions alike).

    ``guide_eps`` > 0: each window's mean is edge-aware, a guided filter (He et al.) whose guide is
    the views' mean shown in sRGB, regularised by ``guide_eps`` (sRGB units squared; edges of less
    contrast than about its square root are averaged across). The residual is then pooled along
    image edges, not across them, as stereo cost-volume filtering does: at a depth edge each side
    keeps its own layer instead of the one that fits the other side's larger residual (each mean kept
    at or above :data:`GUIDED_FLOOR` of the box mean). 0: box means.

    ``scale`` > 1 (edge-aware means only): the fast guided filter. The residual and the guide are
    averaged over ``scale`` x ``scale`` blocks, the filter's coefficients and the box mean are found
    there with each window's radius divided by ``scale`` (rounded), and upsampled to be applied to
    the full-resolution guide: ``scale``^2 times fewer pixels for the box means that dominate the
    fusion's time.

    (C, H, W) views, (L, C, H, W) reblurred layers -> (L, H, W) weights summing to 1."""
    res = []
    local_mean = _window_mean(left, right, windows, guide_eps, scale)
    for i in range(blur_left.shape[0]):
        r = ((blur_left[i].float() - left).square() + (blur_right[i].float() - right).square()).mean(0)
        res.append(local_mean(r))
    res_t = torch.stack(res)
    # floor: a residual below 1e-6 of the signal's power counts as "fits exactly" (noise-free flat
    # regions would otherwise divide by ~0 and turn rounding noise into an arbitrary layer choice)
    floor = 1e-6 * float(((left + right) / 2).mean()) ** 2
    rel = res_t / res_t.min(0, keepdim=True).values.clamp_min(max(floor, 1e-12))
    return torch.softmax(-rel / temperature, 0)


def _window_mean(left: torch.Tensor, right: torch.Tensor, windows: tuple[int, ...], guide_eps: float,
                 scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The local mean of :func:`residual_weights`, (H, W) -> (H, W): the mean over ``windows`` of each
    window's (edge-aware) mean, the guide's part computed once for every layer."""
    if guide_eps <= 0:
        return lambda r: sum(box_mean(r, w // 2) for w in windows) / len(windows)
    from dpcli.classical.filters import guide_statistics, guided_coefficients, upsample
    from dpcli.optics import linear_to_srgb

    guide = linear_to_srgb(((left + right) / 2).float().clamp(0, 1)).mean(0, keepdim=True)[None]
    scale = max(1, min(int(scale), *guide.shape[-2:]))
    small = F.avg_pool2d(guide, scale) if scale > 1 else guide
    size = tuple(guide.shape[-2:])
    radii = [max(1, int((w // 2) / scale + 0.5)) if scale > 1 else w // 2 for w in windows]
    stats = {k: guide_statistics(small, k) for k in set(radii)}  # the same for every layer

    def local_mean(r: torch.Tensor) -> torch.Tensor:
        p = F.avg_pool2d(r[None, None], scale) if scale > 1 else r[None, None]
        total = 0
        for k in radii:
            box = box_mean(p, k)
            a, b = guided_coefficients(small, p, k, guide_eps, stats[k], box)
            a, b, box = upsample(torch.cat([a, b, box], 1), size, scale)[0]
            total = total + torch.maximum(a * guide[0, 0] + b, GUIDED_FLOOR * box)
        return total / len(windows)

    return local_mean


def penalise_overshoot(weights: torch.Tensor, left: torch.Tensor, right: torch.Tensor, stack: LayerStack,
                       overshoot: float, temperature: float) -> torch.Tensor:
    """Layer weights with the layers that overshoot made less likely, for any fusion method.

    A layer whose latent leaves the views' local range (over its own blur radius + 2 px, shown in
    sRGB, beyond 2/255) loses ``excess / overshoot`` in the softmin's relative-residual units:
    weights * exp(-excess / (overshoot * temperature)), renormalised. The reblur residual cannot
    see ringing (re-blurring removes exactly the frequencies that ring), so near depth edges a
    wrong, ringing layer could win: the dark blotches and colour streaks of a bare choice.

    (L, H, W) weights, (C, H, W) views, stack with latent (L, C, H, W) and radii (L,) -> (L, H, W).
    """
    if overshoot <= 0 or stack.radii is None:
        return weights
    logits = torch.log(weights.float().clamp_min(1e-30))
    for i, excess in enumerate(overshoot_excess(left, right, stack.latent, stack.radii)):
        logits[i] -= excess / (overshoot * temperature)
    return torch.softmax(logits, 0)


def overshoot_excess(left: torch.Tensor, right: torch.Tensor, latent: torch.Tensor, radii: torch.Tensor,
                     window: int = 3) -> list[torch.Tensor]:
    """Per layer, (H, W): how far its latent (shown in sRGB) leaves the combined view's local
    range over ``ceil(|r_i|) + 2`` px by more than 2/255, max over channels, box-averaged over
    ``window`` px. (C, H, W) views, (L, C, H, W) latents, (L,) radii."""
    from dpcli.classical.filters import local_range, range_excess
    from dpcli.optics import linear_to_srgb

    shown = linear_to_srgb(((left + right) / 2).clamp(0, 1))[None]
    ranges: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    out = []
    for i in range(latent.shape[0]):
        reach = int(math.ceil(abs(float(radii[i])))) + 2
        if reach not in ranges:
            ranges[reach] = local_range(shown, reach)
        lo, hi = ranges[reach]
        x = linear_to_srgb(latent[i].float().clamp(0, 1))[None]
        out.append(box_mean(range_excess(x, lo, hi), window)[0])
    return out


@register_fusion("residual")
def _residual(left: torch.Tensor, right: torch.Tensor, stack: LayerStack, cfg: ZeroShotConfig) -> torch.Tensor:
    return residual_weights(left, right, stack.blur_left, stack.blur_right, cfg.choice_windows,
                            cfg.choice_temperature, cfg.choice_guide_eps, cfg.choice_scale)


def fuse_layers(left: torch.Tensor, right: torch.Tensor, stack: LayerStack, cfg: ZeroShotConfig | None = None,
                method: str | None = None) -> Fusion:
    """Stage-1 fusion: per-pixel weights of the stage-1 layers and the fused image.

    Args:
        left, right: (C, H, W) views (the ones the layers were solved from).
        stack: stage-1 :class:`LayerStack` (latent, blur_left, blur_right: (L, C, H, W)).
        cfg: :class:`ZeroShotConfig` (window sizes, temperature, ...); default ``ZeroShotConfig()``.
        method: a registered name (:func:`fusion_methods`); default ``cfg.fusion``.

    Returns:
        :class:`Fusion` (weights (L, H, W), image (C, H, W), method, seconds).
    """
    cfg = cfg or ZeroShotConfig()
    name = method or cfg.fusion
    fn = get_fusion(name)
    start = time.perf_counter()
    out = fn(left, right, stack, cfg)
    if name != "auto" and getattr(cfg, "choice_overshoot", 0.0) > 0:  # auto: done by the method it runs
        weights = out.weights if isinstance(out, Fusion) else out
        weights = penalise_overshoot(weights, left, right, stack, cfg.choice_overshoot, cfg.choice_temperature)
        out = Fusion(weights, blend_layers(weights, stack.latent), name)
    elif not isinstance(out, Fusion):
        out = Fusion(out, blend_layers(out, stack.latent), name)
    out.seconds = time.perf_counter() - start
    return out
