"""Every registered method keeps the method contract (dpcli.methods): shapes, encodings, maps,
and on a synthetic scene of its domain it beats the blurry input (a single-image network's: a
subject in focus beside a blurred background)."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.methods import get_method, method_names
from dpcli.metrics.image import psnr
from dpcli.optics import linear_to_srgb
from tests.methods.conftest import render_disc_photo, render_pair

import torch

NAMES = method_names()


def _srgb(x: np.ndarray) -> np.ndarray:
    return linear_to_srgb(torch.from_numpy(np.ascontiguousarray(x)).clamp(0, 1)).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_contract(name: str) -> None:
    method = get_method(name, device="cpu")
    domain = method.domains[0]
    if method.blur_model == "uniform disc":  # what it undoes; a DP scene's blur it leaves alone
        (sharp, left), right = render_disc_photo(4.0, colour=domain == "dslr"), None
    else:
        sharp, left, right = render_pair(4.0, colour=domain == "dslr", in_focus_part=not method.needs_pair)
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


def test_python_api_deblur_matches_run_defaults() -> None:
    import dpcli

    sharp, left, right = render_pair(4.0)
    out = dpcli.deblur(right, left, srgb=False)  # the files in the wrong order
    assert out.info["method"] == "zeroshot" and out.info["orientation"].startswith("swapped")
    blurry = (left + right) / 2
    assert psnr(out.image[None], sharp[None]) > psnr(blurry[None], sharp[None]) + 0.3
