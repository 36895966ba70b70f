"""Photos stay photos: EXIF orientation applied on reading, EXIF / ICC / XMP carried into PNG, JPEG
and TIFF outputs (dpcli.io.metadata through read_image / write_image)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from dpcli.io.images import read_image, write_image
from dpcli.io.metadata import EXIF_HEADER, PhotoMeta, read_metadata, tiff_encoding_hint

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmp:Rating="4"/></rdf:RDF></x:xmpmeta>'
CAMERA = {271: "Canon", 272: "Canon EOS 5D Mark IV"}
SHOT = {0x9003: "2024:05:01 10:00:00", 0xA434: "EF50mm f/1.8 STM"}  # DateTimeOriginal, LensModel


def _exif(orientation: int = 1) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif.update(CAMERA)
    exif[0x8769] = dict(SHOT)
    return exif


def _pixels(h: int = 6, w: int = 10) -> np.ndarray:
    return (np.random.default_rng(1).random((h, w, 3)) * 255).astype(np.uint8)  # h != w: turns show


def _photo(path: Path, orientation: int = 6) -> Path:
    extra = {"xmp": XMP, "quality": 100} if path.suffix == ".jpg" else {}
    PILImage.fromarray(_pixels()).save(path, exif=_exif(orientation), icc_profile=ICC, **extra)
    return path


def _tags(path: Path) -> tuple[dict, dict, int]:
    """(IFD0 camera tags, EXIF IFD tags, orientation) of a written file, read back by Pillow."""
    meta = read_metadata(path)
    assert meta.exif, f"{path.name} has no EXIF"
    exif = PILImage.Exif()
    exif.load(EXIF_HEADER + meta.exif)
    return {k: exif.get(k) for k in CAMERA}, {k: exif.get_ifd(0x8769).get(k) for k in SHOT}, exif.get(0x0112, 1)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_on_reading_like_pillow(tmp_path, suffix, orientation):
    path = _photo(tmp_path / f"o{orientation}{suffix}", orientation)
    image = read_image(path)
    with PILImage.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im)).astype(np.float32) / 255
    assert image.data.shape == upright.transpose(2, 0, 1).shape
    assert np.array_equal(image.data, upright.transpose(2, 0, 1))
    assert image.meta.orientation == orientation


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff"])
@pytest.mark.parametrize("source", [".jpg", ".png", ".tiff"])
def test_exif_icc_xmp_travel_to_every_format_and_orientation_resets(tmp_path, source, suffix):
    if source == ".tiff":  # a TIFF photo: written by us from a JPEG, so a TIFF source has them all
        first = read_image(_photo(tmp_path / "src.jpg"))
        src = write_image(tmp_path / "src.tiff", first.data, 16, meta=first.meta)
    else:
        src = _photo(tmp_path / f"src{source}")
    image = read_image(src)
    assert image.size == (10, 6)  # stored 6 x 10, orientation 6: upright it is 10 high
    out = write_image(tmp_path / f"out{suffix}", image.data, 8, meta=image.meta)
    camera, shot, orientation = _tags(out)
    assert camera == CAMERA and shot == SHOT and orientation == 1
    meta = read_metadata(out)
    assert meta.icc == ICC
    if source != ".png":  # Pillow writes no XMP into a PNG, so that source has none
        assert meta.xmp == XMP
    back = read_image(out)
    assert back.size == (10, 6) and back.meta.orientation == 1  # upright on disk: not turned again
    if suffix != ".jpg":
        assert np.array_equal(back.data, np.round(image.data * 255) / 255)


def test_tiff_output_is_readable_by_tifffile_with_its_exif_ifd(tmp_path):
    image = read_image(_photo(tmp_path / "src.jpg"))
    for depth in (8, 16, 32):
        out = write_image(tmp_path / f"out{depth}.tiff", image.data, depth, meta=image.meta)
        with tifffile.TiffFile(out) as tif:
            page = tif.pages[0]
            assert page.tags["ExifTag"].value["LensModel"] == SHOT[0xA434]
            assert page.tags["Model"].value == CAMERA[272]
            assert page.tags["InterColorProfile"].value == ICC
            assert page.asarray().dtype == {8: np.uint8, 16: np.uint16, 32: np.float32}[depth]


def test_sixteen_bit_png_keeps_its_bits_and_profile(tmp_path):
    data = np.random.default_rng(2).random((3, 8, 12)).astype(np.float32)
    src = read_image(_photo(tmp_path / "src.png"))
    path = write_image(tmp_path / "deep.png", data, 16, meta=src.meta)
    back = read_image(path)
    assert back.bit_depth == 16 and back.meta.icc == ICC
    assert np.abs(back.data - data).max() <= 0.5 / 65535 + 1e-7


def _with_thumbnail(exif: PILImage.Exif) -> bytes:
    """An EXIF block (with its Exif header) whose IFD1 holds a JPEG thumbnail, as cameras write."""
    from PIL import TiffImagePlugin

    block = bytearray(exif.tobytes()[len(EXIF_HEADER):])
    order = "little" if block[:2] == b"II" else "big"
    ifd0 = int.from_bytes(block[4:8], order)
    next_at = ifd0 + 2 + 12 * int.from_bytes(block[ifd0:ifd0 + 2], order)
    thumb = io.BytesIO()
    PILImage.fromarray(_pixels(16, 16)).save(thumb, "JPEG")
    thumb_at = len(block)
    block += thumb.getvalue() + b"\x00" * (len(thumb.getvalue()) % 2)
    ifd1 = TiffImagePlugin.ImageFileDirectory_v2(ifh=bytes(block[:8]))
    ifd1[0x0201], ifd1[0x0202] = thumb_at, len(thumb.getvalue())
    ifd1_at = len(block)
    block += ifd1.tobytes(ifd1_at)
    block[next_at:next_at + 4] = ifd1_at.to_bytes(4, order)
    return EXIF_HEADER + bytes(block)


def test_the_input_thumbnail_is_not_carried(tmp_path):
    from PIL import ExifTags

    src = tmp_path / "thumb.jpg"
    PILImage.fromarray(_pixels()).save(src, exif=_with_thumbnail(_exif(6)))
    with PILImage.open(src) as im:
        assert im.getexif().get_ifd(ExifTags.IFD.IFD1)  # the source has one
    out = write_image(tmp_path / "out.jpg", read_image(src).data, 8, meta=read_metadata(src))
    with PILImage.open(out) as im:
        exif = im.getexif()
        assert exif.get(272) == CAMERA[272] and exif.get(0x0112) == 1
        assert not exif.get_ifd(ExifTags.IFD.IFD1)  # a thumbnail of the blurred, sideways input: dropped


def test_files_without_metadata_read_and_write_as_before(tmp_path):
    data = np.random.default_rng(3).random((1, 5, 7)).astype(np.float32)
    for suffix in (".png", ".tiff"):
        path = write_image(tmp_path / f"plain{suffix}", data, 16)
        meta = read_metadata(path)
        assert not meta and meta.orientation == 1
        assert np.abs(read_image(path).data - data).max() <= 0.5 / 65535 + 1e-7


def _icc_with_curve(curve: bytes) -> bytes:
    """A minimal ICC profile: a 128-byte header and one rTRC tag holding ``curve``."""
    header = bytearray(128)
    header[36:40] = b"acsp"
    table = (1).to_bytes(4, "big") + b"rTRC" + (144).to_bytes(4, "big") + len(curve).to_bytes(4, "big")
    return bytes(header) + table + curve


def _curv(*entries: int) -> bytes:
    """An ICC 'curv' tag: 0 entries = identity, 1 = a gamma (u8.8), more = a table."""
    return b"curv" + bytes(4) + len(entries).to_bytes(4, "big") + b"".join(e.to_bytes(2, "big") for e in entries)


@pytest.mark.parametrize("curve, expect", [
    (_curv(), (False, "ICC profile: tone curve gamma 1.0")),  # identity
    (_curv(563), (True, "ICC profile: tone curve gamma 2.2")),
    (_curv(0, 32768, 65535), (False, "ICC profile: tone curve gamma 1.0")),  # a straight table
    (_curv(358), (None, "no colour hint in the file")),  # gamma 1.4: neither, so no hint
])
def test_tiff_encoding_hint_reads_the_icc_tone_curve(tmp_path, curve, expect) -> None:
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, np.zeros((4, 4, 3), np.float32), photometric="rgb", iccprofile=_icc_with_curve(curve))
    assert tiff_encoding_hint(path) == expect


def test_tiff_encoding_hint_reads_photometric_and_exif_colour_space(tmp_path) -> None:
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4, 3), np.float32), photometric="rgb")
    assert tiff_encoding_hint(tmp_path / "plain.tif") == (None, "no colour hint in the file")
    tifffile.imwrite(tmp_path / "logl.tif", np.zeros((4, 4), np.float32), photometric=32844)
    assert tiff_encoding_hint(tmp_path / "logl.tif") == (False, "photometric LogL")
    exif = _exif()
    exif[0x8769] = {**SHOT, 0xA001: 1}  # EXIF ColorSpace = sRGB
    meta = PhotoMeta(exif=exif.tobytes()[len(EXIF_HEADER):])
    write_image(tmp_path / "exif.tif", np.zeros((3, 4, 4), np.float32), 32, meta=meta)
    assert tiff_encoding_hint(tmp_path / "exif.tif") == (True, "EXIF colour space sRGB")
