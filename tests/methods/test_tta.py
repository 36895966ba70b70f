"""Test-time augmentation: the transforms round-trip, an identity-like method comes back exactly,
and a DP network's TTA output does not depend on the order the views were given in."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.methods import get_method, method_names
from dpcli.methods.base import Method
from dpcli.methods.network import NetworkMethod
import dpcli.methods.tta as tta_mod
from dpcli.methods.tta import (DIHEDRAL, DP_TRANSFORMS, SIGN_KEEPING, TTA, dihedral, flip_inplace, tta_pair,
                               tta_passes, tta_single, tta_worth, undo_dihedral)
from tests.methods.conftest import shipped_pair_network


class Identity(Method):
    """A single-image 'method' that returns its input (counts its calls)."""

    name, needs_pair, space, min_size = "identity", False, "srgb", 4

    def __init__(self) -> None:
        self.calls = 0

    def _deblur(self, left, right, *, kernels, defocus, focus):
        self.calls += 1
        return left.copy(), None, {}


def test_dihedral_transforms_are_eight_distinct_invertible_maps() -> None:
    x = np.random.default_rng(0).random((3, 5, 7), dtype=np.float32)
    seen = set()
    for k in DIHEDRAL:
        y = dihedral(x, k)
        seen.add(y.tobytes() + bytes(y.shape))
        assert np.array_equal(undo_dihedral(y, k), x)
    assert len(seen) == 8


def test_eight_dihedral_transforms_of_identity_return_the_input_exactly() -> None:
    x = np.random.default_rng(1).random((3, 24, 40), dtype=np.float32)
    assert np.array_equal(tta_single(lambda im: im, x), x)
    inner = Identity()
    out = TTA(inner).deblur(x, None, srgb=True).image
    assert inner.calls == 8
    assert np.array_equal(out, x)


def test_dp_transforms_round_trip_and_sign() -> None:
    rng = np.random.default_rng(2)
    left, right = rng.random((1, 6, 9), dtype=np.float32), rng.random((1, 6, 9), dtype=np.float32)
    assert len(DP_TRANSFORMS) == 8 and len(SIGN_KEEPING) == 4
    for t in DP_TRANSFORMS:
        tl, tr = t.apply(left, right)
        first, second = (right, left) if t.swap else (left, right)
        assert np.array_equal(t.undo(tl), first) and np.array_equal(t.undo(tr), second)


@pytest.mark.parametrize("shape", [(2, 7, 5), (1, 130, 131), (3, 1, 4)])
def test_flip_inplace_is_numpy_flip_in_the_arrays_own_memory(shape) -> None:
    x = np.random.default_rng(3).random(shape, dtype=np.float32)
    for axes in ((-2,), (-1,), (-2, -1)):
        y = x.copy()
        address = y.__array_interface__["data"][0]
        assert flip_inplace(y, axes, block=3) is y and y.__array_interface__["data"][0] == address
        assert np.array_equal(y, np.flip(x, axes))


def test_pair_transforms_applied_in_place_see_what_apply_gives_and_restore_the_views() -> None:
    rng = np.random.default_rng(4)
    left, right = rng.random((3, 9, 12), dtype=np.float32), rng.random((3, 9, 12), dtype=np.float32)
    keep = left.copy(), right.copy()
    for t in DP_TRANSFORMS:
        with t.applied(left, right) as (tl, tr):
            want = t.apply(*keep)
            assert np.array_equal(tl, want[0]) and np.array_equal(tr, want[1])
        assert np.array_equal(left, keep[0]) and np.array_equal(right, keep[1])
    with pytest.raises(RuntimeError):  # an error in the pass: the views still come back as they were
        with DP_TRANSFORMS[-1].applied(left, right):
            raise RuntimeError("network failed")
    assert np.array_equal(left, keep[0]) and np.array_equal(right, keep[1])


def test_pair_tta_in_place_gives_the_copying_definition_and_leaves_the_inputs() -> None:
    """tta_pair flips the views in place; its mean is the definition's (copies of every transform),
    also for a network that hands back a view of its input, and read-only views are copied."""
    rng = np.random.default_rng(5)
    left, right = rng.random((3, 10, 14), dtype=np.float32), rng.random((3, 10, 14), dtype=np.float32)
    keep = left.copy(), right.copy()

    def net(a, b):  # not symmetric in the views, not flip-equivariant: every transform counts
        return a * 0.75 + np.cumsum(b, axis=-1) * 0.01

    want = np.mean([t.undo(net(*t.apply(*keep))) for t in DP_TRANSFORMS], axis=0, dtype=np.float64)
    got = tta_pair(net, left, right, DP_TRANSFORMS)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.array_equal(left, keep[0]) and np.array_equal(right, keep[1])
    same = tta_pair(lambda a, b: a, left, right, DP_TRANSFORMS)  # the output is the flipped input itself
    np.testing.assert_allclose(same, (keep[0] + keep[1]) / 2, rtol=0, atol=1e-6)
    assert np.array_equal(left, keep[0]) and np.array_equal(right, keep[1])
    ro_left, ro_right = keep[0].copy(), keep[1].copy()
    ro_left.flags.writeable = ro_right.flags.writeable = False
    np.testing.assert_allclose(tta_pair(net, ro_left, ro_right, DP_TRANSFORMS), want, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_two_pass_mean_is_the_float64_mean_bit_for_bit_and_never_written_into_an_input() -> None:
    rng = np.random.default_rng(3)
    for scale in (1.0, 1e-3, 1e-6):
        a = (rng.random((3, 17, 19)) * scale).astype(np.float32)
        b = rng.random((3, 17, 19), dtype=np.float32)
        want = ((a.astype(np.float64) + b) / 2).astype(np.float32)
        assert np.array_equal(tta_mod._mean(iter([a.copy(), b])), want)
        assert np.array_equal(tta_mod._mean(iter([b.copy(), a])), want)  # either order
        given = a.copy()
        got = tta_mod._mean(iter([given, b]), inputs=(given,))
        assert np.array_equal(given, a) and np.array_equal(got, want)
    c = rng.random((3, 17, 19), dtype=np.float32)
    three = ((a.astype(np.float64) + b + c) / 3).astype(np.float32)
    assert np.array_equal(tta_mod._mean(iter([a, b, c])), three)
    assert np.array_equal(tta_mod._mean(iter([c, a, b])), three)


def test_dp_tta_output_is_independent_of_the_file_order(dslr_pair) -> None:
    """(L, R) at radius r is (R, L) at -r with the same AiF: the TTA over all 8 transforms sees the
    same 8 pairs for either order. Without TTA the network's two outputs differ; the default TTA
    (4 sign-keeping passes) gets the same image from either order through run's L/R detection."""
    import torch

    import dpcli
    from dpcli.optics import linear_to_srgb

    sharp, left, right = (linear_to_srgb(torch.from_numpy(a)).numpy() for a in dslr_pair)
    name = shipped_pair_network("dslr")
    plain = get_method(name, device="cpu", tile=0, tta=False)
    a = plain.deblur(left, right, srgb=True).image
    b = plain.deblur(right, left, srgb=True).image
    assert np.abs(a - b).max() > 1e-3  # the order matters without TTA
    order_free = TTA(plain, passes=8)
    out_lr = order_free.deblur(left, right, srgb=True)
    out_rl = order_free.deblur(right, left, srgb=True).image
    assert out_lr.info["tta"] == "8 passes"
    assert np.abs(out_lr.image - out_rl).max() < 1e-5
    api_lr = dpcli.deblur(left, right, method=name, tta=True, device="cpu", tile=0)
    api_rl = dpcli.deblur(right, left, method=name, tta=True, device="cpu", tile=0)
    assert api_lr.info["tta"] == "4 passes" and api_lr.info["orientation"] != api_rl.info["orientation"]
    assert np.abs(api_lr.image - api_rl.image).max() < 1e-5


def test_tta_option_wraps_networks_only_and_auto_follows_the_measurements() -> None:
    assert not isinstance(get_method("zeroshot", tta=True), TTA)
    net = shipped_pair_network("dslr")
    assert not isinstance(get_method(net, tta=False), TTA)
    on = get_method(net, tta=True)
    assert isinstance(on, TTA) and on.name == net and on.task == "deblur_pair" and on.measured
    for name in method_names():  # tta None: on exactly where the measurements say it is worth it
        auto = get_method(name)
        if isinstance(auto, TTA):
            assert auto.mode is None and any(tta_worth(name, d) for d in auto.domains), name
        elif isinstance(auto, NetworkMethod):
            assert not any(tta_worth(name, d) for d in auto.domains), name
    assert tta_worth("no-such-method", "dslr") is False  # nothing measured: off


def test_default_passes_follow_the_gain_per_pass_rule(monkeypatch) -> None:
    monkeypatch.setattr(tta_mod, "_measured_tta", lambda name: {"dslr": {"passes": {
        "2": {"gain_db": 0.08, "worst_db": 0.01}, "4": {"gain_db": 0.12, "worst_db": 0.02},
        "8": {"gain_db": 0.5, "worst_db": -0.1}}}})
    assert tta_passes("x", "dslr") == 2  # 4 passes need 0.15 dB; 8 made a scene worse
    assert tta_passes("x", "phone") == 1
    monkeypatch.setattr(tta_mod, "_measured_tta", lambda name: {"dslr": {"passes": {
        "2": {"gain_db": 0.08, "worst_db": 0.01}, "4": {"gain_db": 0.2, "worst_db": 0.0}}}})
    assert tta_passes("x", "dslr") == 4  # both worth it: the larger gain


def test_measured_default_runs_its_passes_in_its_domain_only(monkeypatch) -> None:
    """2 passes measured worth it on colour (dslr) pairs: auto TTA runs 2 there, and 1 on a grey pair."""
    monkeypatch.setattr(tta_mod, "_measured_tta", lambda name: {"dslr": {"passes": {
        "2": {"gain_db": 0.1, "worst_db": 0.0}}}} if name == "net" else {})
    inner = Identity()
    inner.needs_pair, inner.name = True, "net"
    x = np.random.default_rng(3).random((3, 32, 48), dtype=np.float32)
    auto = TTA(inner, mode=None)
    out = auto.deblur(x, x, srgb=True)
    assert inner.calls == 2 and np.array_equal(out.image, x)
    inner.calls = 0
    auto.deblur(x[:1], x[:1], srgb=False)  # a grey raw (phone) pair: not measured there, no TTA
    assert inner.calls == 1
