"""Composite methods: measured combinations of other methods' outputs, registered, measured
(``measured.json``) and ranked by :func:`~dpcli.methods.base.default_method` like any method.

* :class:`Blend`: a fixed per-image blend of its parts (e.g. the equal average of the DSLR
  BaMBNet and the zero-shot stage-1 image), optionally each limited to one part's local range.
* :class:`ResidualFusion`: a per-pixel confidence fusion: each part's all-in-focus image is
  reblurred with the pair's left/right kernels as the zero-shot stage 1 estimated them (its
  per-pixel layer weights over the layer kernels), and the parts are weighted per pixel by a
  softmin of how badly that reblur explains both views (the zero-shot layer choice's own
  :func:`~dpcli.zeroshot.residual_weights`, here over methods instead of layers).

Every part runs once per item; :meth:`Composite.combine` takes parts' outputs computed elsewhere
(the benchmark runs each part once per scene and scores every composite from them).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dpcli.arrays import encode, to_numpy, to_tensor
from dpcli.domains import DOMAINS
from dpcli.errors import ModelError
from dpcli.io.pairs import linear_mean_view
from dpcli.methods.base import Method, register_method
from dpcli.methods.builtin import measured_gains

__all__ = ["Composite", "Blend", "ResidualFusion", "reblur_views", "method_confidence"]

DSLR_NET = "bambnet_deblur_small.dslr-synth"


class Composite(Method):
    """A method made of named ``parts`` (each run once per item, in this method's space), their
    images combined by :meth:`_combine`. ``methods`` may hand in part instances to share (name ->
    Method); other ``options`` (device, tta, ...) go to ``resolve`` (the registry's ``get_method``,
    which hands itself in: this module never imports the registry) for the parts.
    The defocus map is the first part's in ``map_part`` (default the first part)."""

    parts: tuple[str, ...] = ()
    map_part: str | None = None
    needs_pair = True

    def __init__(self, methods: dict[str, Method] | None = None, resolve: Any = None, **options: Any) -> None:
        self.options, self.resolve = options, resolve
        self.methods = {n: self.prepare(m) for n, m in (methods or {}).items()}
        self.measured = measured_gains(self.name)
        # meant for the domains all its parts are meant for (a phone+dslr zero-shot with a dslr net:
        # dslr); none while a part's weights are not installed, so no default picks it
        try:
            self.domains = tuple(d for d in DOMAINS if all(d in self.part(n).domains for n in self.parts))
        except ModelError:
            self.domains = ()

    def part(self, name: str) -> Method:
        if name not in self.methods:
            if self.resolve is None:
                raise ModelError(f"{self.name}: its part {name} is not given (build it with dpcli.methods.get_method)")
            self.methods[name] = self.prepare(self.resolve(name, **self.options))
        return self.methods[name]

    def prepare(self, method: Method) -> Method:
        """Adapt a part once it is built (e.g. make the zero-shot keep its layer weights)."""
        return method

    def _deblur(self, left, right, *, kernels, defocus, focus):
        srgb = self.space == "srgb"
        map_part = self.map_part or self.parts[0]
        outs = {name: self.part(name).deblur(left, right, srgb=srgb, kernels=kernels,
                                             defocus=defocus and name == map_part, focus=focus)
                for name in self.parts}
        image = self._combine(left, right, {n: o.image for n, o in outs.items()}, kernels)
        info = {"parts": {n: o.info for n, o in outs.items()}}
        if defocus:
            info["defocus_source"] = outs[map_part].info.get("defocus_source", map_part)
        return image, outs[map_part].defocus, info

    def combine(self, left: np.ndarray, right: np.ndarray, images: dict[str, np.ndarray], *, srgb: bool,
                kernels=None) -> np.ndarray:
        """The composite image from parts' images computed elsewhere, all (C, H, W) in the
        caller's encoding (``srgb``), as :meth:`deblur` would return it."""
        convert = srgb != (self.space == "srgb")
        if convert:
            left, right = encode(left, not srgb), encode(right, not srgb)
            images = {n: encode(im, not srgb) for n, im in images.items()}
        image = self._combine(left, right, images, kernels)
        return encode(image, srgb) if convert else np.asarray(image, np.float32)

    def _combine(self, left, right, images: dict[str, np.ndarray], kernels) -> np.ndarray:
        raise NotImplementedError


class Blend(Composite):
    """Fixed weights per part (``weights``, summing to 1), the same at every pixel. With ``guard``
    (a part's name), every other part is first limited, per pixel and channel, to the guard's
    local range (min / max over a (2 ``guard_radius`` + 1)^2 box, widened by ``guard_margin``):
    what only one part puts there (e.g. zero-shot's dark blotches at depth edges) is cut back to
    what the guard sees nearby, detail both agree on passes."""

    weights: tuple[float, ...] = ()
    guard: str | None = None
    guard_radius: int = 3
    guard_margin: float = 0.02

    def _combine(self, left, right, images, kernels):
        bounds = None
        if self.guard is not None:
            from dpcli.zeroshot.fusion_features import _local_range

            lo, hi = _local_range(to_tensor(images[self.guard]), self.guard_radius)
            bounds = (to_numpy(lo) - self.guard_margin, to_numpy(hi) + self.guard_margin)
        out = np.zeros_like(images[self.parts[0]], dtype=np.float32)
        for name, w in zip(self.parts, self.weights):
            im = np.asarray(images[name], np.float32)
            if bounds is not None and name != self.guard:
                im = np.clip(im, *bounds)
            out += np.float32(w) * im
        return out


def reblur_views(image: torch.Tensor, layer_weights: torch.Tensor, kernels: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """An all-in-focus image seen through the pair's estimated kernels: per pixel, the blend by
    ``layer_weights`` of the image blurred with each layer's left / right kernel.

    (C, H, W) image, (L, H, W) weights summing to 1, (L, 2, K, K) [left, right] kernels ->
    (reblurred left, reblurred right), each (C, H, W).
    """
    from dpcli.optics.conv import blur
    from dpcli.zeroshot import blend_layers

    stack = image[None].expand(kernels.shape[0], *image.shape)
    left, right = (blend_layers(layer_weights, blur(stack, kernels[:, side, None])) for side in (0, 1))
    return left, right


def method_confidence(left: torch.Tensor, right: torch.Tensor, images: list[torch.Tensor],
                      layer_weights: torch.Tensor, kernels: torch.Tensor, windows: tuple[int, ...] = (15, 31, 61),
                      temperature: float = 0.6) -> torch.Tensor:
    """Per-pixel weights of M methods' images: a softmin of each image's local L/R reblur
    residual (:func:`reblur_views`; the residual and softmin are the zero-shot layer choice's,
    :func:`dpcli.zeroshot.residual_weights`). (C, H, W) views, M (C, H, W) images -> (M, H, W)."""
    from dpcli.zeroshot import residual_weights

    reblurred = [reblur_views(im, layer_weights, kernels) for im in images]
    return residual_weights(left, right, torch.stack([r[0] for r in reblurred]), torch.stack([r[1] for r in reblurred]),
                            windows, temperature)


class ResidualFusion(Composite):
    """Per-pixel fusion of the parts by their DP reblur residual (module docstring); one part
    must be ``zeroshot``, whose stage-1 layer weights and kernels define the reblur."""

    space = "linear"
    map_part = "zeroshot"
    temperature: float = 0.6

    def prepare(self, method: Method) -> Method:
        if method.name == "zeroshot":
            method.config = method.config.with_(keep_layers=True)  # its per-pixel layer weights
        return method

    def _combine(self, left, right, images, kernels):
        from dpcli.zeroshot import blend_layers, prepare_kernels
        from dpcli.zeroshot.kernels import layer_kernels

        zs = self.part("zeroshot")
        res = zs.result
        if res is None or res.weights is None or res.aif.shape != images["zeroshot"].shape:
            raise RuntimeError("the fusion needs the zero-shot part's result for this item (run it first)")
        c, h, w = left.shape
        measured = None if kernels is None else tuple(np.asarray(k, np.float32) for k in kernels)
        setup = prepare_kernels(zs.config, h, w, measured)
        kern = layer_kernels(setup.uniform, to_tensor(res.radii))
        ims = [to_tensor(images[n]).clamp(0, None) for n in self.parts]
        weights = method_confidence(to_tensor(left), to_tensor(right), ims, to_tensor(res.weights), kern,
                                    temperature=self.temperature)
        return to_numpy(blend_layers(weights, torch.stack(ims)))


@register_method("blend_bambnet_zeroshot")
class BlendBambnetZeroshot(Blend):
    name = "blend_bambnet_zeroshot"
    parts = (DSLR_NET, "zeroshot")
    weights = (0.5, 0.5)
    space = "srgb"
    map_part = "zeroshot"
    guard = DSLR_NET  # zero-shot's depth-edge blotches cut to the network's local range (same PSNR)
    summary = ("equal average of the DSLR BaMBNet and the zero-shot stage-1 image, the latter limited to the "
               "network's local range (sRGB; both run)")


@register_method("fusion_bambnet_zeroshot")
class FusionBambnetZeroshot(ResidualFusion):
    name = "fusion_bambnet_zeroshot"
    parts = (DSLR_NET, "zeroshot")
    summary = ("per-pixel fusion of the DSLR BaMBNet and the zero-shot stage-1 image, weighted by how "
               "well each, reblurred with the pair's estimated L/R kernels, explains both views")


class Switch(Composite):
    """The first part's image where that part acted (:meth:`acted` reads its info), else the
    second part's: the second runs only where the first returned the photo unchanged. A
    single-image first part of a pair method reads the pair's combined view (the views' mean in
    linear light, CONVENTIONS.md)."""

    def acted(self, info: dict) -> bool:
        raise NotImplementedError

    def handled_by(self, info: dict) -> Method:
        return self.part(info["chosen"]) if "chosen" in info else self

    def _deblur(self, left, right, *, kernels, defocus, focus):
        srgb = self.space == "srgb"
        first, second = (self.part(n) for n in self.parts)
        run = dict(srgb=srgb, kernels=kernels, focus=focus)
        if right is not None and not first.needs_pair:  # a single-image part reads the pair's combined view
            out = first.deblur(linear_mean_view(left, right, srgb), None, defocus=False, **dict(run, srgb=False))
            if srgb and self.acted(out.info):
                out.image = encode(out.image, True)
        else:
            out = first.deblur(left, right, defocus=defocus, **run)
        if self.acted(out.info):
            dmap = out.defocus
            if defocus and right is not None and dmap is None:  # the map asked for: the second part's
                dmap = second.deblur(left, right, defocus=True, **run).defocus
            return out.image, dmap, {"chosen": self.parts[0], "parts": {self.parts[0]: out.info}}
        out = second.deblur(left, right, defocus=defocus, **run)
        said = {"note": out.info["note"]} if out.info.get("note") else {}  # e.g. why it came back unchanged
        return out.image, out.defocus, {"chosen": self.parts[1], "parts": {self.parts[1]: out.info}, **said}

    def _combine(self, left, right, images, kernels):
        raise ModelError(f"{self.name} chooses one part per photo; it has no fixed combination")


@register_method("deconv_or_network")
class DeconvOrNetwork(Switch):
    """Single photos: the blind deconvolution where the photo's spectrum shows a uniform disc blur
    (a whole photo taken out of focus), else the shipped single-image network with its gates
    (partly blurred photos, whose blur varies across the frame)."""

    name = "deconv_or_network"
    needs_pair = False
    space = "srgb"
    parts = ("deconv_single", "defocusgan_generator_small.dslr-consensus")
    summary = ("single photos: blind disc deconvolution where a uniform blur is measured, else the "
               "single-image network (defocusgan_generator_small.dslr-consensus)")

    def acted(self, info: dict) -> bool:
        return float(info.get("blur_radius_px", 0.0)) > 0.0


@register_method("deconv_or_bambnet")
class DeconvOrBambnet(DeconvOrNetwork):
    """Colour DP pairs: the blind deconvolution of the combined view where it shows a uniform disc
    blur (the whole frame equally out of focus), else the DSLR BaMBNet with its focus gate (blur
    that varies across the frame, as in the Canon dev scenes)."""

    name = "deconv_or_bambnet"
    needs_pair = True
    parts = ("deconv_single", DSLR_NET)
    summary = ("colour DP pairs: blind disc deconvolution of the combined view where a uniform blur is "
               f"measured, else {DSLR_NET} with its focus gate")
