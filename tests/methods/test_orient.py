"""Orientation of a DP pair (dpcli/methods/orient.py): a pair rendered with a known sign is oriented
right whichever file order it comes in; the stage-1 side balance decides where the disparity cannot
and is skipped on images too small for it."""
from __future__ import annotations

import pytest

from dpcli.methods.orient import STAGE1_MIN_SIZE, orient, stage1_side_balance
from tests.methods.conftest import render_pair


def test_stage1_side_balance_sign() -> None:
    _, left, right = render_pair(4.0, size=(128, 160))
    b = stage1_side_balance(left, right)
    assert b > 0.1
    assert stage1_side_balance(right, left) == pytest.approx(-b, abs=1e-3)


@pytest.mark.parametrize("radius", [3.0, -3.0])
def test_a_pair_of_known_sign_is_oriented_right_in_either_order(radius: float) -> None:
    """Front focus (the prior): behind the focal plane, r > 0, is as given; r < 0 in the given order
    is the pair swapped. Disparity decides (half a pixel or more), no side balance is read."""
    _, left, right = render_pair(radius, size=(48, 64))
    given = orient(left, right, srgb=False)
    flipped = orient(right, left, srgb=False)
    assert given.source == flipped.source == "disparity"
    assert given.swapped is (radius < 0) and flipped.swapped is (radius > 0)
    assert given.score > 0 and flipped.score > 0  # after the decision the evidence agrees with the prior
    assert "balance" not in given.evidence
    assert orient(left, right, srgb=False, focus="back").swapped is (radius > 0)  # the other prior


def test_the_user_decides_without_measuring() -> None:
    _, left, right = render_pair(3.0, size=(48, 64))
    o = orient(left, right, srgb=False, user=True)
    assert o.swapped and o.source == "user" and o.evidence == {}


def test_a_pair_too_small_for_stage_1_reads_no_side_balance() -> None:
    _, left, right = render_pair(0.0, size=(STAGE1_MIN_SIZE - 8, 40))  # in focus: no disparity to read
    o = orient(left, right, srgb=False)
    assert "balance" not in o.evidence and not o.swapped
    assert orient(left, right, srgb=False, hint=True).swapped  # the profile's hint where the data cannot tell
