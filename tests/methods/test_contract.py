"""Every registered method keeps the method contract (dpcli.methods): shapes, encodings, maps,
and on a synthetic scene of its domain it beats the blurry input."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.domains import DOMAINS
from dpcli.methods import default_method, get_method, item_domain, list_methods, method_names
from dpcli.methods.builtin import broad_figure, broad_trust
from dpcli.metrics.image import psnr
from dpcli.optics import linear_to_srgb
from tests.methods.conftest import render_disc_photo, render_pair

import torch

NAMES = method_names()


def _srgb(x: np.ndarray) -> np.ndarray:
    return linear_to_srgb(torch.from_numpy(np.ascontiguousarray(x)).clamp(0, 1)).numpy()


def test_registry_lists_training_free_methods_and_shipped_weights() -> None:
    assert {"zeroshot", "classical"} <= set(NAMES)
    for m in list_methods():
        assert m.name in NAMES and m.space in ("linear", "srgb") and set(m.domains) <= {"phone", "dslr"}


@pytest.mark.parametrize("name", NAMES)
def test_contract(name: str) -> None:
    method = get_method(name, device="cpu")
    domain = method.domains[0]
    if method.blur_model == "uniform disc":  # what it undoes; a DP scene's blur it leaves alone
        (sharp, left), right = render_disc_photo(4.0, colour=domain == "dslr"), None
    else:
        sharp, left, right = render_pair(4.0, colour=domain == "dslr")
    srgb = domain == "dslr"
    if srgb:
        sharp, left = _srgb(sharp), _srgb(left)
        right = None if right is None else _srgb(right)
    if not method.needs_pair and right is not None:
        left, right = (left + right) / 2, None
    out = method.deblur(left, right, srgb=srgb, defocus=method.needs_pair)
    assert out.image.shape == sharp.shape and out.image.dtype == np.float32 and np.isfinite(out.image).all()
    blurry = (left + right) / 2 if right is not None else left
    crop = (slice(None), slice(12, -12), slice(12, -12))  # borders: every method pads differently
    gain = psnr(out.image[crop][None], sharp[crop][None]) - psnr(blurry[crop][None], sharp[crop][None])
    assert gain > 0.3, f"{name}: {gain:+.2f} dB on a synthetic {domain} scene"
    if method.needs_pair:
        assert out.defocus.shape == sharp.shape[-2:] and np.isfinite(out.defocus).all()


@pytest.mark.parametrize("name", ["zeroshot", "classical"])
def test_encoding_converted_once_inside_the_method(name: str) -> None:
    """The same scene given linear or sRGB-encoded gives the same image, in the caller's encoding."""
    from dpcli.zeroshot import make_config

    config = make_config("fast", layers=6, max_radius=6.0, output_stage="init") if name == "zeroshot" else None
    method = get_method(name, config=config)
    _, left, right = render_pair(4.0, colour=True, seed=1)
    lin = method.deblur(left, right, srgb=False).image
    enc = method.deblur(_srgb(left), _srgb(right), srgb=True).image
    assert np.abs(_srgb(lin) - enc).mean() < 2e-3


def test_zeroshot_map_sign_and_orientation_free_image() -> None:
    method = get_method("zeroshot")
    _, left, right = render_pair(4.0)
    out = method.deblur(left, right, srgb=False, defocus=True)
    assert 2.0 < float(np.median(out.defocus)) < 6.0  # positive: behind the focal plane


def test_small_images_fail_in_one_line() -> None:
    from dpcli.errors import InputError

    tiny = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(InputError, match="at least 32 px"):
        get_method("zeroshot").deblur(tiny, tiny, srgb=False)
    with pytest.raises(InputError, match="needs a dual-pixel pair"):
        get_method("classical").deblur(tiny, None, srgb=False)


def test_defaults_come_from_measured_gains() -> None:
    from dpcli.methods.base import Method

    class Fake(Method):
        def __init__(self, name, needs_pair, measured, domains=("phone", "dslr")):
            self.name, self.needs_pair, self.measured, self.domains = name, needs_pair, measured, domains

        def _deblur(self, *a, **k):  # never called here
            raise AssertionError

    pool = [Fake("a", True, {"phone": 0.4}), Fake("b", True, {"phone": 1.3, "dslr": 0.7}),
            Fake("c", True, {"dslr": 2.0}, domains=("phone",)), Fake("s", False, {"dslr": -0.1})]
    assert default_method("phone", True, pool).name == "b"
    assert default_method("dslr", True, pool).name == "b"  # c is not meant for dslr, whatever it scored
    assert default_method("dslr", False, pool) is None  # nothing that beats the input
    pool.append(Fake("better", True, {"phone": 1.5}))
    assert default_method("phone", True, pool).name == "better"  # new weights take over: data, not code
    pool[-1].spares_sharp = False  # ... unless they harm sharp photos and another method does not
    assert default_method("phone", True, pool).name == "b"
    for m in pool:
        m.spares_sharp = False  # where every candidate harms them, the largest gain still wins
    assert default_method("phone", True, pool).name == "better"


def test_broad_benchmark_figures_rank_the_defaults(monkeypatch) -> None:
    """Trust on photos nobody tuned on comes first: a method that made broad photos worse is passed
    over for one that did not; where every candidate did, the one that made the fewest worse wins."""
    from dpcli.methods import registry
    from dpcli.methods.base import Method

    class Fake(Method):
        def __init__(self, name, gain):
            self.name, self.needs_pair, self.measured, self.domains = name, False, {"dslr": gain}, ("dslr",)

        def _deblur(self, *a, **k):  # never called here
            raise AssertionError

    below = {"net": 63, "switch": 43, "clean": 0}
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: {"below_input": below[name]})
    monkeypatch.setattr(registry, "broad_trust", lambda name, domain: None if name not in below else below[name] == 0)
    pool = [Fake("net", 0.85), Fake("switch", 0.84), Fake("clean", 0.1)]
    assert default_method("dslr", False, pool).name == "clean"  # the only one that made none worse
    assert default_method("dslr", False, pool[:2]).name == "switch"  # fewer made worse beats +0.01 dB
    below["clean"] = 5
    assert default_method("dslr", False, pool).name == "clean"
    pool.append(Fake("untried", 2.0))  # never run on the broad benchmark while the others were
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: None if name == "untried"
                        else {"below_input": below[name]})
    assert default_method("dslr", False, pool).name == "clean"
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: None)  # nothing measured there:
    monkeypatch.setattr(registry, "broad_trust", lambda name, domain: None)  # the dev gain decides
    assert default_method("dslr", False, pool).name == "untried"


def test_shipped_defaults_keep_their_promises() -> None:
    """Whatever ships (dpcli/weights/manifest.json, dpcli/methods/measured.json), the default for each
    domain and kind of input is meant for that domain, beats the input there, and spares sharp photos
    wherever some candidate does; no default only where nothing measured beats the input."""
    for domain in DOMAINS:
        for pair in (True, False):
            candidates = [m for m in list_methods()
                          if m.needs_pair == pair and domain in m.domains and m.measured.get(domain, 0.0) > 0]
            chosen = default_method(domain, pair)
            if chosen is None:
                assert not candidates, (domain, pair)
                continue
            assert chosen.needs_pair == pair and domain in chosen.domains and chosen.measured[domain] > 0
            tried = any(broad_figure(m.name, domain) is not None for m in candidates)

            def trusted(m) -> bool:  # spares sharp photos and kept the broad benchmark's promise (where it ran)
                return m.spares_sharp and (broad_trust(m.name, domain) if tried else True) is True

            if any(trusted(m) for m in candidates):
                assert trusted(chosen), (domain, pair)
    assert item_domain(1, False) == "phone" and item_domain(3, True) == "dslr" and item_domain(1, True) == "dslr"


def test_unknown_name_lists_valid_ones() -> None:
    from dpcli.errors import ModelError

    with pytest.raises(ModelError, match="zeroshot"):
        get_method("nosuch")


def test_stage1_side_balance_sign() -> None:
    from dpcli.methods import stage1_side_balance

    _, left, right = render_pair(4.0, size=(128, 160))
    b = stage1_side_balance(left, right)
    assert b > 0.1
    assert stage1_side_balance(right, left) == pytest.approx(-b, abs=1e-3)


def test_python_api_deblur_matches_run_defaults() -> None:
    import dpcli

    sharp, left, right = render_pair(4.0)
    out = dpcli.deblur(right, left, srgb=False)  # the files in the wrong order
    assert out.info["method"] == "zeroshot" and out.info["orientation"].startswith("swapped")
    blurry = (left + right) / 2
    assert psnr(out.image[None], sharp[None]) > psnr(blurry[None], sharp[None]) + 0.3
