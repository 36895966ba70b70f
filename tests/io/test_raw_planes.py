"""Pixel-style raw planes: black level, scaling, vignetting from a white-sheet pair."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.errors import InputError
from dpcli.io.images import read_array, write_image
from dpcli.io.raw import normalize_plane, preprocess_planes, read_raw_planes, vignetting_gain


def test_normalize_plane_black_and_white_level() -> None:
    raw = np.array([[0, 1024, 1025, 1024 + 16383]], dtype=np.uint16)
    out = normalize_plane(raw, 1024, 2**14 - 1)
    np.testing.assert_allclose(out, [[0.0, 0.0, 1 / 16383, 1.0]], rtol=1e-6)
    assert out.dtype == np.float32


def test_vignetting_gain_undoes_a_smooth_falloff() -> None:
    h, w = 16, 320
    yy, xx = np.mgrid[0:h, 0:w]
    falloff = 1.0 - 0.3 * xx / w  # right view darker toward +x
    white_l = np.full((h, w), 1024 + 8000.0)
    white_r = 1024 + 8000.0 * falloff
    scene = 1000.0 + 50.0 * np.sin(yy / 3.0)
    left, right = preprocess_planes(1024 + scene, 1024 + scene * falloff, 1024, 16383,
                                    white_sheet=(white_l, white_r))
    # A 101-box over a linear falloff keeps it linear in the interior (away from the reflect edges).
    inner = (slice(None), slice(60, 260))
    np.testing.assert_allclose(right[inner], left[inner], rtol=2e-3)
    gain = vignetting_gain(white_l, white_r, 1024, 16383, box=1)
    np.testing.assert_allclose(gain, 1 / falloff, rtol=1e-5)


def test_preprocess_planes_keeps_torch_type() -> None:
    left = torch.full((1, 8, 8), 2048.0)
    l, r = preprocess_planes(left, left.clone(), 1024, 1024)
    assert isinstance(l, torch.Tensor) and l.dtype == torch.float32
    assert torch.allclose(l, torch.ones_like(l)) and torch.allclose(r, l)


def test_preprocess_planes_size_mismatch() -> None:
    with pytest.raises(InputError, match="differ"):
        preprocess_planes(np.zeros((4, 4)), np.zeros((4, 5)), 0, 1)


def test_read_raw_planes_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(900, 17407, size=(2, 20, 30)).astype(np.uint16)
    write_image(tmp_path / "a_left.png", counts[0][None] / 65535.0, 16)
    write_image(tmp_path / "a_right.png", counts[1][None] / 65535.0, 16)
    assert np.array_equal(read_array(tmp_path / "a_left.png"), counts[0])
    left, right = read_raw_planes(tmp_path / "a_left.png", tmp_path / "a_right.png")
    np.testing.assert_allclose(left[0], np.maximum(counts[0].astype(np.float64) - 1024, 0) / 16383, rtol=1e-6)
    assert left.shape == right.shape == (1, 20, 30)
    with pytest.raises(InputError, match="both white sheets"):
        read_raw_planes(tmp_path / "a_left.png", tmp_path / "a_right.png", white_sheet_left=tmp_path / "a_left.png")


def test_read_raw_planes_rejects_float_and_mismatch(tmp_path) -> None:
    write_image(tmp_path / "f_left.tiff", np.zeros((1, 4, 4)), 32)
    write_image(tmp_path / "f_right.tiff", np.zeros((1, 4, 4)), 32)
    with pytest.raises(InputError, match="integer counts") as info:
        read_raw_planes(tmp_path / "f_left.tiff", tmp_path / "f_right.tiff")
    assert "f_left.tiff" in str(info.value)
    write_image(tmp_path / "m_left.png", np.zeros((1, 4, 4)), 16)
    write_image(tmp_path / "m_right.png", np.zeros((1, 4, 5)), 16)
    with pytest.raises(InputError, match="differ in size"):
        read_raw_planes(tmp_path / "m_left.png", tmp_path / "m_right.png")


@pytest.mark.realdata
@pytest.mark.parametrize("scene, expected", [("002", 27.82), ("013", 33.54)])
def test_pixel4_combined_matches_published_psnr(pixel4_dir, scene, expected) -> None:
    """The combined image of the preprocessed views reproduces the data README's PSNR (full crop)."""
    cal = pixel4_dir / "calibration"
    left, right = read_raw_planes(pixel4_dir / f"{scene}_left.png", pixel4_dir / f"{scene}_right.png",
                                  white_sheet_left=cal / "white_sheet_left.png",
                                  white_sheet_right=cal / "white_sheet_right.png")
    combined = ((left + right) / 2)[0, 252:1260, 336:1680].astype(np.float64)
    gt = read_array(pixel4_dir / "gt_all_in_focus_im" / f"{scene}_gt.png") / 65535.0
    # The README's figures are on the full crop, zero border included.
    psnr = 10 * np.log10(1.0 / np.mean((combined - gt) ** 2))
    assert abs(psnr - expected) < 0.1
    # Vignetting correction matters: without it the score drops.
    l0, r0 = read_raw_planes(pixel4_dir / f"{scene}_left.png", pixel4_dir / f"{scene}_right.png")
    plain = ((l0 + r0) / 2)[0, 252:1260, 336:1680].astype(np.float64)
    assert 10 * np.log10(1.0 / np.mean((plain - gt) ** 2)) < psnr - 0.2
