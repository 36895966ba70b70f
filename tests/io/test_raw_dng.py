"""Dual Pixel RAW through rawpy, on two-frame Bayer DNG files written here with pidng.

No real Canon Dual Pixel .CR2 can be obtained; these DNGs exercise the same code (frame selection
with rawpy shot_select, frame arithmetic, identical rendering of both views).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pidng")
rawpy = pytest.importorskip("rawpy")

from tests.io.dng_writer import mosaic_rggb, write_dng  # noqa: E402

from dpcli.errors import InputError  # noqa: E402
from dpcli.io.pairs import RawDPInput, RawOptions, discover_inputs, load_pair, load_single  # noqa: E402
from dpcli.io.raw import read_dual_pixel_raw, read_raw_image, split_dual_pixel  # noqa: E402
from dpcli.optics.color import linear_to_srgb  # noqa: E402

BLACK, WHITE = 512, 16383
H, W = 48, 64


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Smooth linear-sRGB scene (H, W, 3) and the share of light on photodiode A (H, W)."""
    yy, xx = np.mgrid[0:H, 0:W]
    scene = np.stack([0.2 + 0.1 * np.sin(xx / 5), 0.25 + 0.1 * np.cos(yy / 7),
                      0.15 + 0.05 * np.sin((xx + yy) / 6)], axis=-1)
    share = 0.35 + 0.3 * xx / W
    return scene, share


def _frames(scene: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    full = np.round(mosaic_rggb(scene) * (WHITE - BLACK))
    part = np.round(full * share)
    return (BLACK + full).astype(np.uint16), (BLACK + part).astype(np.uint16)


@pytest.fixture()
def dp_dng(tmp_path: Path) -> Path:
    scene, share = _scene()
    return write_dng(tmp_path / "shot.dng", _frames(scene, share), BLACK, WHITE)


def test_dng_frames_read_back_exactly(dp_dng: Path) -> None:
    frame0, frame1 = _frames(*_scene())
    for shot, expected in ((0, frame0), (1, frame1)):
        raw = rawpy.RawPy()
        raw.set_unpack_params(shot_select=shot)
        raw.open_file(str(dp_dng))
        assert np.array_equal(raw.raw_image_visible, expected)
        raw.close()


def test_split_dual_pixel_arithmetic() -> None:
    frame0 = np.array([[600, 16383, 530]], dtype=np.uint16)
    frame1 = np.array([[530, 9000, 540]], dtype=np.uint16)
    a, b, clipped = split_dual_pixel(frame0, frame1, 512, 500, 16383)
    assert a.tolist() == [[30, 8500, 40]]
    assert b.tolist() == [[58, 15871 - 8500, 0]]  # noise below black is clipped to 0, not negative
    assert clipped.tolist() == [[False, True, False]]


def test_views_are_consistent_with_the_combined_capture(dp_dng: Path) -> None:
    scene, share = _scene()
    dp = read_dual_pixel_raw(dp_dng, output="linear")
    assert dp.left.shape == dp.right.shape == dp.combined.shape == (3, H, W)
    inner = (slice(None), slice(2, -2), slice(2, -2))
    # frame 0 rendered with camera WB, linear, no auto-brightening reproduces the scene
    assert np.abs(dp.combined - scene.transpose(2, 0, 1))[inner].max() < 5e-3
    # left = photodiode A (frame 1) at combined scale; right = the rest
    assert np.abs(dp.left - 2 * share * scene.transpose(2, 0, 1))[inner].max() < 5e-3
    assert np.abs(dp.right - 2 * (1 - share) * scene.transpose(2, 0, 1))[inner].max() < 5e-3
    assert np.abs((dp.left + dp.right) / 2 - dp.combined).max() < 2e-4
    assert dp.valid.all()


def test_camera_white_balance_and_no_auto_brightening(tmp_path: Path) -> None:
    neutral = np.array([0.5, 1.0, 0.8])  # what the camera records for grey (DNG AsShotNeutral)
    grey = np.full((H, W, 3), 0.3)
    full = np.round(mosaic_rggb(grey * neutral) * (WHITE - BLACK))
    frames = [(BLACK + full).astype(np.uint16), (BLACK + np.round(full / 2)).astype(np.uint16)]
    dp = read_dual_pixel_raw(write_dng(tmp_path / "wb.dng", frames, BLACK, WHITE, neutral), output="linear")
    np.testing.assert_allclose(dp.combined[:, 2:-2, 2:-2], 0.3, atol=2e-3)  # grey stays grey, same level
    np.testing.assert_allclose(dp.left[:, 2:-2, 2:-2], 0.3, atol=2e-3)


def test_srgb_output_is_the_encoded_linear_output(dp_dng: Path) -> None:
    linear = read_dual_pixel_raw(dp_dng, output="linear")
    srgb = read_dual_pixel_raw(dp_dng, output="srgb")
    for a, b in ((linear.left, srgb.left), (linear.combined, srgb.combined)):
        assert np.allclose(linear_to_srgb(torch.from_numpy(a)).numpy(), b, atol=1e-6)
    assert srgb.left.mean() > linear.left.mean() + 0.1


def test_clipped_pixels_are_masked(tmp_path: Path) -> None:
    scene, share = _scene()
    frame0, frame1 = _frames(scene, share)
    frame0[20:24, 30:34] = WHITE  # sensor clipped in the A+B frame
    dp = read_dual_pixel_raw(write_dng(tmp_path / "clip.dng", [frame0, frame1], BLACK, WHITE))
    assert not dp.valid[20:24, 30:34].any()
    assert not dp.valid[19, 29] and dp.valid[17, 27]  # dilated by the demosaic footprint only
    assert dp.valid.mean() > 0.9


def test_single_frame_dng_is_not_dual_pixel(tmp_path: Path) -> None:
    frame0, _ = _frames(*_scene())
    path = write_dng(tmp_path / "plain.dng", [frame0], BLACK, WHITE)
    with pytest.raises(InputError, match="no frame 1") as info:
        read_dual_pixel_raw(path)
    assert "plain.dng" in str(info.value)


def test_single_frame_raw_renders_as_an_ordinary_image(tmp_path: Path) -> None:
    scene, share = _scene()
    frame0, _ = _frames(scene, share)
    path = write_dng(tmp_path / "plain.dng", [frame0], BLACK, WHITE)
    (item,) = discover_inputs([path])
    image, target, depth = load_single(item, RawOptions(output="linear"))
    assert image.shape == (3, H, W) and target is None and depth == 16
    assert np.abs(image - scene.transpose(2, 0, 1))[:, 2:-2, 2:-2].max() < 5e-3
    assert np.array_equal(read_raw_image(path, output="linear"), image)


def test_corrupt_raw_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.dng"
    bad.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(InputError) as info:
        read_dual_pixel_raw(bad)
    assert "broken.dng" in str(info.value)


def test_discovery_and_load_pair_with_swap(dp_dng: Path) -> None:
    items = discover_inputs([dp_dng.parent])
    assert len(items) == 1 and isinstance(items[0], RawDPInput) and items[0].name == "shot"
    pair = load_pair(items[0])
    swapped = load_pair(items[0], swap_lr=True)
    assert np.array_equal(pair.left, swapped.right) and np.array_equal(pair.right, swapped.left)
    assert pair.valid is not None and pair.combined is not None
    left, right = pair  # unpacks as a (left, right) pair
    assert left.shape == right.shape == (3, H, W)
    image, target, depth = load_single(items[0])
    assert np.array_equal(image, pair.combined) and target is None and depth == 16
