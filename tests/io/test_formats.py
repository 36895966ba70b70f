"""Output formats and bit depths: --format same|png|jpeg|tiff and --quality (OutputOptions) in `run`
and `zeroshot`; the input's format family and depth by default, float TIFFs included."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from typer.testing import CliRunner

from dpcli.cli import app
from dpcli.errors import DpError
from dpcli.io.images import output_format, read_image, write_image
from dpcli.io.metadata import read_metadata


@pytest.mark.parametrize("requested, source, depth, expected", [
    ("same", "a.png", 8, ("png", 8)),
    ("same", "a.png", 16, ("png", 16)),
    ("same", "a.JPG", 8, ("jpeg", 8)),
    ("same", "a.tif", 16, ("tiff", 16)),
    ("same", "a.tiff", 32, ("tiff", 32)),
    ("same", "a.png", 32, ("tiff", 32)),  # float data only fits a TIFF
    ("same", "a.CR2", 16, ("png", 16)),  # raw files: PNG as before
    ("png", "a.tiff", 32, ("png", 16)),
    ("jpeg", "a.png", 16, ("jpeg", 8)),
    ("tiff", "a.jpg", 8, ("tiff", 8)),
])
def test_output_format_keeps_the_family_and_the_depth_it_holds(requested, source, depth, expected):
    assert output_format(requested, Path(source), depth) == expected


def _scene(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.random((3, h, w)) * 0.8 + 0.1, 0, 1).astype(np.float32)


def _float_tiff(path: Path, data: np.ndarray) -> Path:
    tifffile.imwrite(path, data.transpose(1, 2, 0).astype(np.float32))
    return path


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)


def _ok(res) -> None:
    assert res.exit_code == 0, (res.output, res.exception)


def test_float_tiff_single_image_and_pair_come_out_as_float_tiffs(tmp_path):
    """Today: 'PNG cannot hold float data' after computing."""
    src = tmp_path / "in"
    src.mkdir()
    _float_tiff(src / "clean.tiff", _scene())
    nan = _scene(seed=1)
    nan[0, 3, 4] = np.nan
    _float_tiff(src / "holes.tiff", nan)
    view = _scene(seed=2)
    _float_tiff(src / "pair_L.tiff", view)
    _float_tiff(src / "pair_R.tiff", np.roll(view, 1, axis=2))
    out = tmp_path / "out"
    _ok(_run("run", src / "clean.tiff", "-o", out, "--threads", "1", "-q"))
    _ok(_run("run", src, "-o", out, "--threads", "1", "-q"))
    for name in ("clean", "holes", "pair"):
        image = read_image(out / f"{name}.tiff")
        assert image.bit_depth == 32 and image.size == (64, 96) and np.isfinite(image.data).all()
    assert not list(out.glob("*.png"))


def test_zeroshot_on_a_float_tiff_pair_writes_a_float_tiff(tmp_path):
    view = _scene(seed=3)
    left = _float_tiff(tmp_path / "z_L.tiff", view)
    right = _float_tiff(tmp_path / "z_R.tiff", np.roll(view, 1, axis=2))
    _ok(_run("zeroshot", left, right, "-o", tmp_path / "out", "--threads", "1", "-q"))
    image = read_image(tmp_path / "out" / "z.tiff")
    assert image.bit_depth == 32 and image.size == (64, 96)


def _jpeg_photo(path: Path) -> Path:
    exif = PILImage.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to view
    exif[272] = "Pixel 4"
    y, x = np.mgrid[0:48, 0:80] / np.array([48.0, 80.0])[:, None, None]  # smooth: JPEG keeps it close
    pixels = (np.stack([x, y, 0.5 + 0.3 * np.sin(6 * x)], axis=-1) * 255).astype(np.uint8)
    PILImage.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def test_a_jpeg_photo_comes_out_upright_as_a_jpeg_with_its_exif(tmp_path):
    src = _jpeg_photo(tmp_path / "photo.jpg")
    out = tmp_path / "out"
    _ok(_run("run", src, "-o", out, "--threads", "1", "-q"))
    made = out / "photo.jpg"
    image = read_image(made)
    assert image.bit_depth == 8 and image.size == (80, 48)  # upright: 80 high, 48 wide
    with PILImage.open(made) as im:
        assert im.format == "JPEG" and im.getexif().get(272) == "Pixel 4" and im.getexif().get(0x0112) == 1
    for fmt, suffix in (("png", ".png"), ("tiff", ".tiff")):
        _ok(_run("run", src, "-o", tmp_path / fmt, "--format", fmt, "--threads", "1", "-q"))
        other = tmp_path / fmt / f"photo{suffix}"
        assert read_image(other).size == (80, 48) and read_metadata(other).exif
        assert np.abs(read_image(other).data - image.data).mean() < 0.02  # the same picture, JPEG aside


def test_quality_sets_the_jpeg_size_and_depth_is_kept(tmp_path):
    src = _jpeg_photo(tmp_path / "photo.jpg")
    sizes = {}
    for q in (30, 95):
        _ok(_run("run", src, "-o", tmp_path / f"q{q}", "--quality", q, "--threads", "1", "-q"))
        sizes[q] = (tmp_path / f"q{q}" / "photo.jpg").stat().st_size
    assert sizes[30] < 0.7 * sizes[95]
    deep = tmp_path / "deep.png"
    write_image(deep, _scene(seed=4), 16)
    _ok(_run("run", deep, "-o", tmp_path / "d", "--threads", "1", "-q"))
    assert read_image(tmp_path / "d" / "deep.png").bit_depth == 16


@pytest.mark.parametrize("args, message", [
    (["--format", "gif"], "--format gif: expected same, png, jpeg or tiff"),
    (["--quality", "0"], "--quality 0: must be 1 to 100"),
    (["--format", "jpeg", "--bit-depth", "16"], "JPEG holds 8-bit data only"),
    (["--format", "png", "--bit-depth", "32f"], "PNG cannot hold float data"),
])
def test_bad_format_options_are_refused_in_one_line(tmp_path, args, message):
    write_image(tmp_path / "a.png", _scene(), 8)
    res = _run("run", tmp_path / "a.png", "-o", tmp_path / "out", *args)
    assert isinstance(res.exception, DpError) and message in str(res.exception)


@pytest.mark.parametrize("command", ["run", "zeroshot"])
def test_image_writing_commands_share_the_format_options(command):
    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert "--format" in res.output and "--quality" in res.output


def test_a_dp_pair_with_exif_orientation_is_deblurred_as_stored_and_written_upright(tmp_path):
    """DP disparity is horizontal on the sensor: turning the views first would make it vertical."""
    from dpcli.io.metadata import EXIF_HEADER, PhotoMeta, orient_array

    exif = PILImage.Exif()
    exif[0x0112] = 6
    turned = PhotoMeta(exif=exif.tobytes()[len(EXIF_HEADER):])
    view = _scene(seed=5)
    for folder, meta in (("plain", PhotoMeta()), ("turned", turned)):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "p_L.png", view, 8, meta=meta)
        write_image(tmp_path / folder / "p_R.png", np.roll(view, 2, axis=2), 8, meta=meta)
        _ok(_run("run", tmp_path / folder, "-o", tmp_path / f"out_{folder}", "--method", "classical",
                 "--threads", "1", "-q"))
    plain = read_image(tmp_path / "out_plain" / "p.png").data
    upright = read_image(tmp_path / "out_turned" / "p.png").data
    assert upright.shape == (3, 96, 64)
    assert np.array_equal(upright, orient_array(plain.transpose(1, 2, 0), 6).transpose(2, 0, 1))
