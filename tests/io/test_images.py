"""Image files: bit-exact round trips, 16-bit colour PNG, alpha, JPEG, bad files, safe writing."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dpcli.errors import InputError, OutputError
from dpcli.io.images import atomic_write_bytes, quantize, read_array, read_image, write_image

RNG = np.random.default_rng(1)


def _levels(bit_depth: int, shape: tuple[int, ...]) -> np.ndarray:
    """Float data that sits exactly on the file's integer levels (or arbitrary floats for 32)."""
    if bit_depth == 32:
        return RNG.random(shape, dtype=np.float32)
    peak = 255 if bit_depth == 8 else 65535
    return (RNG.integers(0, peak + 1, size=shape) / peak).astype(np.float32)


@pytest.mark.parametrize("suffix, bit_depth", [(".png", 8), (".png", 16), (".tiff", 8), (".tif", 16),
                                               (".tiff", 32)])
@pytest.mark.parametrize("channels", [1, 3])
def test_round_trip_is_bit_exact(tmp_path: Path, suffix: str, bit_depth: int, channels: int) -> None:
    data = _levels(bit_depth, (channels, 9, 13))
    path = write_image(tmp_path / f"x{suffix}", data, bit_depth)
    image = read_image(path)
    assert image.bit_depth == bit_depth and image.data.shape == (channels, 9, 13)
    if bit_depth == 32:
        assert np.array_equal(image.data, data)  # float TIFF: the very same float32 values
    else:
        assert np.array_equal(quantize(image.data, bit_depth), quantize(data, bit_depth))
        assert np.array_equal(image.data, data)


def test_float_tiff_keeps_values_outside_unit_range(tmp_path: Path) -> None:
    data = np.array([[[-0.25, 0.5, 1.75]]], dtype=np.float32)
    assert np.array_equal(read_image(write_image(tmp_path / "f.tiff", data, 32)).data, data)


def test_16bit_rgb_png_keeps_all_16_bits(tmp_path: Path) -> None:
    # Values that differ only in the low byte: an 8-bit reader would merge them.
    counts = np.array([[[256, 257, 258], [65534, 1, 12345]]], dtype=np.uint16)  # (1, 2, 3) = H, W, C
    import imagecodecs

    path = tmp_path / "deep.png"
    path.write_bytes(imagecodecs.png_encode(counts))
    image = read_image(path)
    assert image.bit_depth == 16
    assert np.array_equal(np.rint(image.data.transpose(1, 2, 0) * 65535).astype(np.uint16), counts)
    assert np.array_equal(read_array(path), counts)


def test_rgba_alpha_is_dropped_with_warning(tmp_path: Path) -> None:
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    import imagecodecs

    path = tmp_path / "alpha.png"
    path.write_bytes(imagecodecs.png_encode(rgba))
    with pytest.warns(UserWarning, match="alpha"):
        image = read_image(path)
    assert image.channels == 3 and np.allclose(image.data[0], 200 / 255)


def test_jpeg_read(tmp_path: Path) -> None:
    data = np.full((3, 16, 16), 0.5, dtype=np.float32)
    data[0] = 0.8
    image = read_image(write_image(tmp_path / "photo.jpg", data, 8))
    assert image.bit_depth == 8 and image.data.shape == (3, 16, 16)
    assert np.abs(image.data - data).max() < 3 / 255  # lossy, but close
    with pytest.raises(OutputError, match="8-bit"):
        write_image(tmp_path / "deep.jpg", data, 16)


def test_planar_tiff_is_read_as_rgb(tmp_path: Path) -> None:
    import tifffile

    planar = RNG.integers(0, 65535, size=(3, 5, 7), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    image = read_image(tmp_path / "planar.tif")
    assert np.array_equal(np.rint(image.data * 65535).astype(np.uint16), planar)
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((4, 5, 6), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="stack.tif.*TIFF layout"):
        read_image(tmp_path / "stack.tif")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff"])
def test_truncated_file_names_the_file(tmp_path: Path, suffix: str) -> None:
    good = write_image(tmp_path / f"good{suffix}", RNG.random((3, 64, 64)), 8)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match=f"cut{suffix}: cannot decode"):
        read_image(cut)


def test_corrupt_unsupported_missing_and_folder(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"definitely not a png")
    with pytest.raises(InputError, match="junk.png: not a PNG image"):
        read_image(tmp_path / "junk.png")
    (tmp_path / "pic.bmp").write_bytes(b"BM")
    with pytest.raises(InputError, match="pic.bmp: unsupported image type"):
        read_image(tmp_path / "pic.bmp")
    with pytest.raises(InputError, match="gone.png: no such file"):
        read_image(tmp_path / "gone.png")
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


def test_never_overwrites_inputs_or_existing_outputs(tmp_path: Path) -> None:
    data = np.zeros((1, 4, 4))
    first = write_image(tmp_path / "out.png", data, 8)
    before = first.read_bytes()
    with pytest.raises(OutputError, match="out.png: output exists"):
        write_image(first, np.ones((1, 4, 4)), 8)
    assert first.read_bytes() == before
    write_image(first, np.ones((1, 4, 4)), 8, overwrite=True)
    assert read_image(first).data.min() == 1.0
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        write_image(first, data, 8, overwrite=True, protected={tmp_path / "." / "out.png"})
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # no temp files left behind


def test_no_write_permission(tmp_path: Path) -> None:
    # A path below a regular FILE cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_image(blocker / "sub" / "out.png", np.zeros((1, 2, 2)), 8)
    # An output path that is a folder.
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_bytes(tmp_path / "dir.png", b"x", overwrite=True)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="cannot write"):
                write_image(locked / "out.png", np.zeros((1, 2, 2)), 8)
        finally:
            locked.chmod(0o700)


def test_unsupported_output_type(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unsupported output type"):
        write_image(tmp_path / "x.bmp", np.zeros((1, 2, 2)), 8)
    with pytest.raises(OutputError, match="PNG cannot hold float"):
        write_image(tmp_path / "x.png", np.zeros((1, 2, 2)), 32)
