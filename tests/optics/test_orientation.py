"""Orientation from the data: the disparity sign, the side balance, the prior, the override."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.optics.orientation import Orientation, detect_orientation, horizontal_disparity, orient_views
from tests.methods.conftest import render_pair


@pytest.mark.parametrize("radius", [3.0, 6.0])
def test_disparity_sign_follows_the_radius_sign(radius: float) -> None:
    _, left, right = render_pair(radius)
    d = horizontal_disparity(left, right)
    assert d > 0.5
    assert horizontal_disparity(right, left) == pytest.approx(-d, abs=0.05)


@pytest.mark.parametrize("radius", [4.0, -4.0])
def test_both_file_orders_give_our_orientation(radius: float) -> None:
    _, left, right = render_pair(radius)
    focus = "front" if radius > 0 else "back"  # the prior matches the scene's side
    as_given = detect_orientation(left, right, focus=focus)
    swapped = detect_orientation(right, left, focus=focus)
    assert not as_given.swapped and as_given.source == "disparity" and as_given.label == "as given"
    assert swapped.swapped and swapped.label == "swapped"
    # the prior decides the answer where the scene is on the other side of the focal plane
    assert detect_orientation(left, right, focus="back" if radius > 0 else "front").swapped


def test_side_balance_decides_when_the_disparity_is_too_small() -> None:
    _, left, right = render_pair(0.0)  # in focus: no disparity at all
    calls = []

    def balance(a, b):
        calls.append(1)
        return -0.3

    o = detect_orientation(left, right, side_balance=balance)
    assert calls and o.swapped and o.source == "layers" and o.evidence["balance"] == -0.3
    # undecided evidence falls back on the hint, else keeps the order given
    assert detect_orientation(left, right, side_balance=lambda a, b: 0.0, hint=True).source == "profile"
    o = detect_orientation(left, right, side_balance=lambda a, b: 0.01)
    assert not o.swapped and o.source == "undecided"


def test_user_override_measures_nothing() -> None:
    _, left, right = render_pair(4.0)
    o = detect_orientation(left, right, user=True, side_balance=lambda a, b: 1 / 0)
    assert o.swapped and o.source == "user" and o.describe() == "swapped (user)"


def test_orient_views_swaps_kernels_with_the_views() -> None:
    kl, kr = np.zeros((2, 5, 5)), np.ones((2, 5, 5))
    a, b = np.zeros((1, 4, 4)), np.ones((1, 4, 4))
    l, r, (k1, k2) = orient_views(a, b, Orientation(True, "user"), (kl, kr))
    assert l is b and r is a and k1 is kr and k2 is kl
    l, r, k = orient_views(a, b, Orientation(False, "user"), None)
    assert l is a and k is None


def test_calibration_kernels_oriented_by_their_own_centroids() -> None:
    """Our left kernel's mass lies toward +x (positive radius): a pair given either way round
    comes back the same, so renamed view files and calibration files still fit each other."""
    import torch

    from dpcli.optics.kernels import dp_kernels
    from dpcli.optics.orientation import orient_kernels

    kl, kr = (k.numpy() for k in dp_kernels(torch.tensor([5.0, 3.0])))
    a, b, swapped = orient_kernels(kl, kr)
    assert a is kl and b is kr and not swapped
    a, b, swapped = orient_kernels(kr, kl)
    assert a is kl and b is kr and swapped
    assert orient_kernels(kl, kr, focus="back")[2]


def test_featureless_pair_has_no_disparity() -> None:
    flat = np.full((1, 48, 64), 0.3, np.float32)
    assert horizontal_disparity(flat, flat) == 0.0
    assert detect_orientation(flat, flat).source == "undecided"
