"""The numpy <-> torch boundary (dpcli.arrays): every layout in and back out, integer scaling,
tensors kept where they are, the sRGB round trip, and errors that show what was given."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.arrays import Layout, as_float, encode, to_nchw, to_numpy, to_tensor
from dpcli.errors import InputError


@pytest.mark.parametrize(("shape", "layout"), [((5, 7), "HW"), ((3, 5, 7), "CHW"), ((1, 5, 7), "CHW"),
                                               ((5, 7, 3), "HWC")])
def test_every_layout_comes_back_as_it_went_in(shape, layout) -> None:
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    t, lay = to_nchw(x, "image")
    assert t.ndim == 4 and t.shape[-2:] == (5, 7) and lay.layout == layout
    back = lay.restore(t)
    assert isinstance(back, np.ndarray) and back.shape == shape and np.array_equal(back, x)


def test_a_torch_batch_stays_a_torch_batch() -> None:
    x = torch.rand(2, 3, 4, 6)
    t, lay = to_nchw(x, "image")
    assert lay == Layout(False, "NCHW", torch.float32) and lay.restore(t) is t and torch.equal(t, x)


def test_integers_are_scaled_to_unit_range() -> None:
    t, _ = to_nchw(np.full((4, 4), 255, np.uint8), "image")
    assert float(t.max()) == 1.0
    t, _ = to_nchw(np.full((4, 4), 65535, np.int32), "image")
    assert float(t.max()) == 1.0


@pytest.mark.parametrize(("image", "message"), [([1, 2], "expected a numpy array"),
                                                (np.zeros((5, 5, 5), np.float32), r"shape \(5, 5, 5\)"),
                                                (np.zeros((4, 4), np.int64), "unsupported dtype")])
def test_errors_show_what_was_given(image, message) -> None:
    with pytest.raises(InputError, match=message):
        to_nchw(image, "left view")


def test_values_cross_as_float32_on_the_cpu() -> None:
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = to_tensor(x)
    assert t.dtype == torch.float32 and t.device.type == "cpu" and to_numpy(t).dtype == np.float32
    assert np.array_equal(to_numpy(t), x.astype(np.float32))
    f32 = np.zeros((2, 2), np.float32)
    assert to_numpy(f32) is f32 and np.shares_memory(to_tensor(f32).numpy(), f32)


def test_as_float_keeps_a_tensor_in_its_graph() -> None:
    x = torch.ones(3, requires_grad=True)
    y = as_float(x)
    assert y is x and y.requires_grad
    assert as_float(np.ones(3)).dtype == torch.float32


def test_encode_round_trips_through_srgb() -> None:
    x = np.linspace(0, 1, 11, dtype=np.float32)[None]
    srgb = encode(x, to_srgb=True)
    assert srgb.dtype == np.float32 and float(srgb[0, 5]) > 0.7  # linear 0.5 is bright in sRGB
    np.testing.assert_allclose(encode(srgb, to_srgb=False), x, atol=1e-5)
