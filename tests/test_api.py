"""dpcli.api: the Python front door takes the layouts the README names, shipped weights by name, and
defaults to shipped weights."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import dpcli
from dpcli.errors import InputError, ModelError
from tests.methods.conftest import render_pair

SHIPPED_PAIR = "bambnet_deblur_small.dslr-synth"


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
    by_weights = dpcli.deblur(left, right, weights=SHIPPED_PAIR, device="cpu", tile=0)
    by_method = dpcli.deblur(left, right, method=SHIPPED_PAIR, device="cpu", tile=0)
    assert by_weights.info["method"] == SHIPPED_PAIR
    assert np.array_equal(by_weights.image, by_method.image)
    net = dpcli.deblur_pair(left, right, weights=SHIPPED_PAIR, device="cpu", tile=0)
    assert np.array_equal(net, dpcli.deblur_pair(left, right, model=SHIPPED_PAIR, device="cpu", tile=0))
    with pytest.raises(ModelError, match=f"--weights {SHIPPED_PAIR} are bambnet_deblur_small weights, "
                                                      "not classical"):
        dpcli.deblur(left, right, method="classical", weights=SHIPPED_PAIR)


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
