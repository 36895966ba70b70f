"""dpcli.api: the Python front door takes the layouts the README names, shipped weights by name, and
defaults to shipped weights."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import dpcli
from dpcli.api import Deblurrer, deblur_image, deblur_pair, estimate_coc
from dpcli.errors import InputError, ModelError
from dpcli.models.loading import load_model
from tests.methods.conftest import render_pair, shipped_pair_network



@pytest.fixture(scope="module")
def colour_pair():
    _, left, right = render_pair(3.0, colour=True, size=(48, 64), seed=1)
    return left, right


def test_deblur_takes_hwc_as_read_by_pillow(colour_pair) -> None:
    """(H, W, C) arrays (as Pillow reads a photo) give the (C, H, W) result, in their own layout."""
    left, right = colour_pair
    chw = dpcli.deblur(left, right, method="classical")
    hwc = dpcli.deblur(left.transpose(1, 2, 0), right.transpose(1, 2, 0), method="classical")
    assert chw.image.shape == (3, 48, 64) and hwc.image.shape == (48, 64, 3)
    assert np.array_equal(hwc.image.transpose(2, 0, 1), chw.image)
    assert float(np.abs(chw.image - left).mean()) > 1e-3  # it did deblur
    grey = dpcli.deblur(left[0], right[0], method="classical", srgb=False)
    assert grey.image.shape == (48, 64)
    batch = dpcli.deblur(torch.from_numpy(left)[None], torch.from_numpy(right)[None], method="classical")
    assert isinstance(batch.image, torch.Tensor) and batch.image.shape == (1, 3, 48, 64)


def test_deblur_says_how_it_read_an_ambiguous_shape() -> None:
    view = np.full((3, 20, 3), 0.5, np.float32)
    with pytest.warns(UserWarning, match=r"(left|right): shape \(3, 20, 3\) fits \(C, H, W\) and \(H, W, C\); read as "
                                          r"\(C, H, W\)"):
        with pytest.raises(InputError):  # 20x3 px is too small for any method, but it was read
            dpcli.deblur(view, view, method="classical")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view = np.full((40, 48, 3), 0.5, np.float32)
        assert dpcli.deblur(view, view, method="classical").image.shape == (40, 48, 3)  # no warning


def test_weights_by_name_is_the_method_of_that_name(colour_pair) -> None:
    left, right = colour_pair
    shipped = shipped_pair_network("dslr")
    arch = shipped.split(".")[0]
    by_weights = dpcli.deblur(left, right, weights=shipped, device="cpu", tile=0)
    by_method = dpcli.deblur(left, right, method=shipped, device="cpu", tile=0)
    assert by_weights.info["method"] == shipped
    assert np.array_equal(by_weights.image, by_method.image)
    net = dpcli.deblur_pair(left, right, weights=shipped, device="cpu", tile=0)
    assert np.array_equal(net, dpcli.deblur_pair(left, right, model=shipped, device="cpu", tile=0))
    with pytest.raises(ModelError, match=f"--weights {shipped} are {arch} weights, not classical"):
        dpcli.deblur(left, right, method="classical", weights=shipped)


def test_networks_default_to_the_shipped_weights_for_the_data(colour_pair) -> None:
    """No model, no weights: the shipped network measured best for this kind of data, not an error."""
    from dpcli.api import _shipped_network

    left, right = colour_pair
    from dpcli.methods import get_method

    ran = dpcli.deblur(left, right).info["method"]  # as `run` picks: that network, or a composite's network part
    assert _shipped_network(left, pair=True) in (ran, *getattr(get_method(ran), "parts", ()))
    image = dpcli.deblur_image(left.transpose(1, 2, 0), device="cpu", tile=0)
    named = dpcli.deblur_image(left, _shipped_network(left, pair=False), device="cpu", tile=0)
    assert image.shape == (48, 64, 3) and np.array_equal(image.transpose(2, 0, 1), named)


# --- the API over tiny networks (tiny `*_test` variants: fast) ---------------------------------------

class TestApi:
    @pytest.mark.parametrize("hw", [(37, 53), (16, 16), (5, 70)])
    def test_layouts_and_odd_sizes(self, tiny_weights, hw) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        rng = np.random.default_rng(0)
        left, right = rng.random((3, *hw), dtype=np.float32), rng.random((3, *hw), dtype=np.float32)
        chw = deblur_pair(left, right, weights=w, tile=0)
        assert chw.shape == (3, *hw) and chw.dtype == np.float32 and 0 <= chw.min() and chw.max() <= 1
        hwc = deblur_pair(left.transpose(1, 2, 0), right.transpose(1, 2, 0), weights=w, tile=0)
        assert np.allclose(hwc, chw.transpose(1, 2, 0), atol=1e-6)
        grey = deblur_pair(left[0], right[0], weights=w, tile=0)
        assert grey.shape == hw
        batch = deblur_pair(torch.from_numpy(left)[None].repeat(2, 1, 1, 1),
                            torch.from_numpy(right)[None].repeat(2, 1, 1, 1), weights=w, tile=0)
        assert isinstance(batch, torch.Tensor) and batch.shape == (2, 3, *hw)
        assert torch.allclose(batch[1], torch.from_numpy(chw), atol=1e-5)

    def test_full_frame_equals_the_module(self, tiny_weights) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        loaded = load_model("bambnet", task="deblur_pair", weights=w)
        x, y = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
        out = Deblurrer(loaded, device="cpu", tile=0).deblur_pair(x, y)
        with torch.no_grad():
            ref = loaded.module(torch.cat([x, y], 1))
        assert torch.allclose(out, ref, atol=1e-5)

    def test_post_stage_restores_the_input_local_mean(self, tiny_weights) -> None:
        import dataclasses

        from dpcli.optics.windows import smooth_mean

        loaded = load_model("bambnet", task="deblur_pair", weights=tiny_weights["bambnet_deblur_test"])
        x, y = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 80)
        combined = (x + y) / 2
        from dpcli.methods.post import post_for

        plain = Deblurrer(loaded, device="cpu", tile=0).deblur_pair(x, y)
        session = Deblurrer(dataclasses.replace(loaded, post=("keep_mean:6",)), device="cpu", tile=0)
        kept = session.deblur_pair(x, y, post=post_for(session))
        drift = lambda out: float(smooth_mean(out - combined, 6.0).abs().mean())  # noqa: E731
        assert drift(plain) > 0.05  # an untrained net: far from the input's local mean
        assert drift(kept) < 0.2 * drift(plain)  # (detail kept: tests/optics/test_windows.py)

    def test_tiled_close_to_full_frame(self, tiny_weights) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        x, y = torch.rand(3, 96, 112), torch.rand(3, 96, 112)
        full = deblur_pair(x, y, weights=w, tile=0)
        tiled = deblur_pair(x, y, weights=w, tile=64, tile_overlap=32)
        assert tiled.shape == full.shape
        # channel attention pools per tile, so tiles are close, not identical
        assert float((tiled - full).abs().mean()) < 0.02

    def test_single_image_and_coc(self, tiny_weights) -> None:
        img = np.random.default_rng(1).random((3, 21, 34), dtype=np.float32)
        out = deblur_image(img, weights=tiny_weights["defocusgan_generator_test"])
        assert out.shape == img.shape
        coc = estimate_coc(img, img, model="defocusgan", weights=tiny_weights["defocusgan_defocusnet_test"])
        assert coc.shape == (1, 21, 34) and np.abs(coc).max() <= 24
        coc_hw = estimate_coc(img[0], img[0], model="bambnet", weights=tiny_weights["bambnet_coc_test"])
        assert coc_hw.shape == (21, 34)

    def test_bf16_close_to_fp32(self, tiny_weights) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        x, y = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
        a = deblur_pair(x, y, weights=w, tile=0)
        b = deblur_pair(x, y, weights=w, tile=0, precision="bf16")
        assert float((a - b).abs().max()) < 0.05
