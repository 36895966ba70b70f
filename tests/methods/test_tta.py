"""Test-time augmentation: the transforms round-trip, an identity-like method comes back exactly,
and a DP network's TTA output does not depend on the order the views were given in."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.methods import get_method, method_names
from dpcli.methods.base import Method
from dpcli.methods.network import NetworkMethod
import dpcli.methods.tta as tta_mod
from dpcli.methods.tta import (DIHEDRAL, DP_TRANSFORMS, SIGN_KEEPING, TTA, dihedral, tta_passes, tta_single,
                               tta_worth, undo_dihedral)
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


@pytest.mark.slow
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
