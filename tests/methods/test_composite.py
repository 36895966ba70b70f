"""Composite methods: a fixed blend is the weighted mean of its parts; the residual fusion prefers,
per pixel, the part whose image reblurred through the pair's kernels explains both views; the
registered composites are ranked by their measured gains like any method."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.methods import default_method, get_method
from dpcli.methods.base import Method
from dpcli.methods.composite import Blend, Composite, ResidualFusion
from dpcli.methods.network import NetworkMethod
from dpcli.metrics.image import psnr


class Fixed(Method):
    """A pair 'method' that returns a fixed image (counts its calls)."""

    needs_pair, space, min_size = True, "linear", 4

    def __init__(self, name: str, image: np.ndarray) -> None:
        self.name, self.image, self.calls = name, image, 0

    def _deblur(self, left, right, *, kernels, defocus, focus):
        self.calls += 1
        return self.image.copy(), (np.full(left.shape[-2:], 1.0, np.float32) if defocus else None), {}


class ThreeParts(Blend):
    name, parts, weights, space = "three", ("a", "b", "c"), (0.5, 0.25, 0.25), "linear"


def test_blend_is_the_weighted_mean_of_its_parts_each_run_once() -> None:
    rng = np.random.default_rng(0)
    ims = {n: rng.random((1, 32, 40), dtype=np.float32) for n in "abc"}
    parts = {n: Fixed(n, im) for n, im in ims.items()}
    out = ThreeParts(methods=parts).deblur(ims["a"], ims["b"], srgb=False, defocus=True)
    np.testing.assert_allclose(out.image, 0.5 * ims["a"] + 0.25 * ims["b"] + 0.25 * ims["c"], atol=1e-6)
    assert [p.calls for p in parts.values()] == [1, 1, 1]
    assert out.defocus is not None and set(out.info["parts"]) == {"a", "b", "c"}


def test_guarded_blend_cuts_what_only_one_part_puts_there() -> None:
    """A dark blotch in one part, outside the guard part's local range, is cut back to that range
    (+- the margin) before the blend; where both parts agree the blend is the plain mean."""

    class Guarded(Blend):
        name, parts, weights, space, guard, guard_radius, guard_margin = "g", ("net", "zs"), (0.5, 0.5), "linear", "net", 2, 0.02

    x = np.linspace(0.3, 0.7, 40, dtype=np.float32)
    net = np.broadcast_to(x, (1, 32, 40)).copy()
    zs = net + 0.01  # agrees within the margin
    zs[0, 10:14, 20:24] = 0.0  # a blotch far below anything near it in the guard
    out = Guarded(methods={"net": Fixed("net", net), "zs": Fixed("zs", zs)}).deblur(net, net, srgb=False).image
    np.testing.assert_allclose(out[0, :5], (net[0, :5] + zs[0, :5]) / 2, atol=1e-6)
    lo = net[0, 10:14, 18:26].min() - 0.02
    assert out[0, 10:14, 20:24].min() >= (net[0, 10:14, 20:24].min() + lo) / 2 - 1e-6
    assert out[0, 10:14, 20:24].min() > 0.45  # the plain mean there is about 0.25: half the blotch


@pytest.mark.slow
def test_residual_fusion_prefers_the_image_that_explains_the_views(phone_pair) -> None:
    """Parts: the true sharp image, the blurry combined view, and the zero-shot: the fusion is
    closer to the truth than their equal blend and than the blurry part, whose weight is lowest."""
    sharp, left, right = phone_pair

    class Fuse(ResidualFusion):
        name, parts = "fuse", ("sharp", "blurry", "zeroshot")

    class Even(Blend):
        name, parts, weights, space = "even", ("sharp", "blurry", "zeroshot"), (1 / 3, 1 / 3, 1 / 3), "linear"

    parts = {"sharp": Fixed("sharp", sharp), "blurry": Fixed("blurry", (left + right) / 2),
             "zeroshot": get_method("zeroshot", device="cpu")}
    fuse = Fuse(methods=parts)
    out = fuse.deblur(left, right, srgb=False, defocus=True)
    assert out.defocus is not None and np.median(out.defocus) == pytest.approx(4.0, abs=1.0)
    images = {n: m.deblur(left, right, srgb=False).image for n, m in parts.items()}
    blend = Even(methods=parts).combine(left, right, images, srgb=False)
    b = 16  # away from the frame's reflected border

    def score(im):
        return psnr(np.clip(im, 0, 1)[None, :, b:-b, b:-b], sharp[None, :, b:-b, b:-b])

    assert score(out.image) > score(blend) + 0.5
    assert score(out.image) > score(images["blurry"]) + 3.0
    np.testing.assert_allclose(fuse.combine(left, right, images, srgb=False), out.image, atol=1e-5)


def test_composites_are_registered_and_ranked_by_their_measured_gain(monkeypatch) -> None:
    from dpcli.methods import registry

    # the dev-scene gains alone (the broad benchmark's ranking: tests/methods/test_contract.py)
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: None)
    monkeypatch.setattr(registry, "broad_trust", lambda name, domain: None)
    blend = get_method("blend_bambnet_zeroshot")
    fusion = get_method("fusion_bambnet_zeroshot")
    assert isinstance(blend, Composite) and isinstance(fusion, Composite) and blend.needs_pair
    assert set(blend.parts) == {"bambnet_deblur_small.dslr-synth", "zeroshot"}
    assert blend.domains == ("dslr",)  # the DSLR net is meant for colour sRGB pairs only
    others = [get_method("zeroshot"), get_method("bambnet_deblur_small.dslr-synth")]
    for domain in ("dslr", "phone"):
        best = max([m for m in others + [blend, fusion] if domain in m.domains],
                   key=lambda m: m.measured.get(domain, 0.0))
        assert default_method(domain, True, others + [blend, fusion]) is best
    blend.measured = {"dslr": 9.0}  # a composite that measures best becomes the default, like any method
    assert default_method("dslr", True, others + [blend]) is blend


def test_composite_without_its_parts_installed_is_no_default(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path / "no-weights"))
    blend = get_method("blend_bambnet_zeroshot")
    assert blend.domains == ()
    chosen = default_method("dslr", True)  # without weights: a training-free method, never the composite
    assert chosen is not None and not isinstance(chosen, (Composite, NetworkMethod))


def test_pair_switch_deconvolves_a_uniformly_blurred_pair_from_its_combined_view():
    import torch

    from dpcli.methods import get_method
    from dpcli.metrics.image import psnr
    from dpcli.synth import degrade
    from dpcli.synth.deadleaves import dead_leaves

    sharp = torch.from_numpy(dead_leaves(192, seed=2))[None]
    left, right = degrade.dp_pair(sharp, degrade.radius_ramp(192, 192, 3.0, 3.0))
    out = get_method("deconv_or_bambnet").deblur(left[0].numpy(), right[0].numpy(), srgb=False)
    assert out.info["chosen"] == "deconv_single"
    assert out.info["parts"]["deconv_single"]["blur_radius_px"] == 3.0
    combined = ((left + right) / 2).numpy()
    assert psnr(out.image[None], sharp.numpy()) > psnr(combined, sharp.numpy()) + 1.0
