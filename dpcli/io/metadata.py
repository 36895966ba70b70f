"""What makes a file a photo beyond its pixels: EXIF (camera, lens, date, orientation), ICC profile, XMP.

:func:`read_metadata` reads them from a PNG, JPEG or TIFF header (nothing is decoded);
:func:`orient_array` turns stored pixels upright from the EXIF orientation; the ``embed_*`` functions
put them into an encoded PNG / TIFF (JPEG goes through Pillow's own arguments). EXIF travels as its
TIFF-structured block (what a JPEG's APP1 holds after ``Exif\\0\\0`` and a PNG's ``eXIf`` chunk holds):
copied as it is between PNG and JPEG, with the orientation set to 1 (the pixels were turned) and the
thumbnail dropped (it shows the input, sideways); rebuilt for TIFF, which keeps it in its own IFDs.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_ICC_TAG, _XMP_TAG = 34675, 700
_MAKER_NOTE, _INTEROP = 0x927C, 0xA005  # maker notes hold offsets into their own file: not carried to TIFF
# IFD0 tags of a photo (not of its pixel layout) carried into a TIFF: description, camera, date, people
_IFD0_TEXT = (270, 271, 272, 306, 315, 33432)
# tifffile writes no IFD pointer tags itself: a placeholder one code below each (nothing sorts between
# them) holds the slot, whose code and value attach_tiff_ifds then set
_PLACEHOLDER = {_EXIF_IFD: _EXIF_IFD - 1, _GPS_IFD: _GPS_IFD - 1}


@dataclass(frozen=True)
class PhotoMeta:
    """A photo's metadata as read; ``exif`` is the TIFF-structured block (no ``Exif\\0\\0``) with its
    orientation already set to 1, ``orientation`` the file's own (1-8, applied to the pixels on reading)."""

    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    orientation: int = 1

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc or self.xmp)


NO_META = PhotoMeta()


# ------------------------------------------------------------------------------------------ reading
def read_metadata(path: str | Path) -> PhotoMeta:
    """EXIF, ICC profile, XMP and orientation of a PNG / JPEG / TIFF; :data:`NO_META` for other files
    and for headers Pillow cannot parse (the pixels' own reader reports real damage)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            return _tiff_meta(path)
        if suffix in (".png", ".jpg", ".jpeg"):
            return _pillow_meta(path)
    except Exception:  # a header Pillow cannot parse: no metadata, the decoder says what is wrong
        return NO_META
    return NO_META


def _pillow_meta(path: Path) -> PhotoMeta:
    import warnings

    from PIL import Image as PILImage

    with warnings.catch_warnings():  # sizes are checked by probe_image (up to 400 MP), not Pillow's bomb guard
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        limit, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None
        try:
            with PILImage.open(path) as im:  # lazy: reads the header and metadata chunks, not the pixels
                info = dict(im.info)
        finally:
            PILImage.MAX_IMAGE_PIXELS = limit
    exif = info.get("exif")
    if isinstance(exif, bytes) and exif.startswith(EXIF_HEADER):
        exif = exif[len(EXIF_HEADER):]
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    orientation, exif = _reset_orientation(exif) if exif else (1, None)
    return PhotoMeta(exif=exif or None, icc=info.get("icc_profile") or None, xmp=xmp or None,
                     orientation=orientation)


def _tiff_meta(path: Path) -> PhotoMeta:
    from PIL import Image as PILImage

    source = PILImage.Exif()
    with path.open("rb") as handle:
        source.load_from_fp(handle)  # IFD0 of the TIFF itself
        sub = {tag: dict(source.get_ifd(tag)) for tag in (_EXIF_IFD, _GPS_IFD) if tag in source}
    icc, xmp = source.get(_ICC_TAG), source.get(_XMP_TAG)
    orientation = int(source.get(_ORIENTATION, 1) or 1)
    exif = PILImage.Exif()
    for tag in _IFD0_TEXT:
        if tag in source:
            exif[tag] = source[tag]
    for tag, values in sub.items():
        values.pop(_MAKER_NOTE, None)
        values.pop(_INTEROP, None)
        if values:
            exif[tag] = values
    block = exif.tobytes()[len(EXIF_HEADER):] if len(exif) else None
    return PhotoMeta(exif=block, icc=bytes(icc) if icc else None,
                     xmp=bytes(xmp) if isinstance(xmp, (bytes, tuple)) else (xmp.encode() if xmp else None),
                     orientation=orientation if 1 <= orientation <= 8 else 1)


def _reset_orientation(block: bytes) -> tuple[int, bytes]:
    """The orientation of a TIFF-structured EXIF block, and the block with it set to 1 and without
    its thumbnail IFD (IFD0's next-IFD offset zeroed). A block it cannot parse comes back unchanged."""
    data = bytearray(block)
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return 1, bytes(block)
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        return 1, bytes(block)
    (count,) = struct.unpack_from(order + "H", data, ifd)
    orientation = 1
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(data):
            return 1, bytes(block)
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag == _ORIENTATION and kind == 3:  # SHORT, stored inline
            (value,) = struct.unpack_from(order + "H", data, entry + 8)
            orientation = value if 1 <= value <= 8 else 1
            struct.pack_into(order + "H", data, entry + 8, 1)
    tail = ifd + 2 + 12 * count
    if tail + 4 <= len(data):
        struct.pack_into(order + "I", data, tail, 0)  # no IFD1: its thumbnail is of the input
    return orientation, bytes(data)


def orient_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels (H, W[, C]) -> upright, for EXIF orientation 1-8 (6: turn 90 degrees clockwise)."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = array[::-1].swapaxes(0, 1)
    elif orientation == 7:
        array = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        array = array[:, ::-1].swapaxes(0, 1)
    return np.ascontiguousarray(array)


# ------------------------------------------------------------------------------------------ writing
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def embed_png(png: bytes, meta: PhotoMeta) -> bytes:
    """An encoded PNG with iCCP, eXIf and an XMP iTXt chunk after its header (before the pixels)."""
    if not meta:
        return png
    chunks = b""
    if meta.icc:
        chunks += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(meta.icc))
    if meta.exif:
        chunks += _png_chunk(b"eXIf", meta.exif)
    if meta.xmp:
        chunks += _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + meta.xmp)
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length + type, its 13 bytes, CRC
    return png[:end_of_ihdr] + chunks + png[end_of_ihdr:]


def tiff_extratags(meta: PhotoMeta) -> list[tuple]:
    """tifffile ``extratags`` for XMP and IFD0 photo tags; EXIF / GPS IFD pointers are written as
    placeholders and set by :func:`attach_tiff_ifds` once the file's length is known."""
    tags: list[tuple] = []
    if meta.xmp:
        tags.append((_XMP_TAG, 1, len(meta.xmp), meta.xmp, True))
    for tag, value in _exif_ifd0(meta).items():
        if tag in _IFD0_TEXT and isinstance(value, str) and value.isascii():
            tags.append((tag, 2, 0, value, True))
        elif tag in _PLACEHOLDER:
            tags.append((_PLACEHOLDER[tag], 4, 1, 0, True))
    return tags


def _exif_ifd0(meta: PhotoMeta):
    from PIL import Image as PILImage

    exif = PILImage.Exif()
    if meta.exif:
        try:
            exif.load(EXIF_HEADER + meta.exif)
        except Exception:  # an unparsable block is not carried into a TIFF
            return PILImage.Exif()
    return exif


def attach_tiff_ifds(tiff: bytes, meta: PhotoMeta) -> bytes:
    """Append the EXIF and GPS IFDs of ``meta`` to an encoded TIFF written with
    :func:`tiff_extratags`, and point its IFD0 entries at them."""
    import tifffile
    from PIL import TiffImagePlugin

    exif = _exif_ifd0(meta)
    wanted = [tag for tag in (_EXIF_IFD, _GPS_IFD) if tag in exif]
    if not wanted:
        return tiff
    with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
        order = tif.byteorder
        found = tif.pages[0].tags
        slots = {tag: (found[_PLACEHOLDER[tag]].offset, found[_PLACEHOLDER[tag]].valueoffset)
                 for tag in wanted if _PLACEHOLDER[tag] in found}
    data = bytearray(tiff)
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + b"\x00\x00\x00\x08"
    for tag, (entry, slot) in slots.items():
        values = dict(exif.get_ifd(tag))
        values.pop(_MAKER_NOTE, None)
        values.pop(_INTEROP, None)
        ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head)
        for key, value in values.items():
            ifd[key] = value
        if len(data) % 2:
            data += b"\x00"
        offset = len(data)
        data += ifd.tobytes(offset)
        struct.pack_into(order + "HH", data, entry, tag, 4)  # the real pointer tag, LONG
        struct.pack_into(order + "I", data, slot, offset)
    return bytes(data)


# ------------------------------------------------------------------------------ colour encoding hints
_LINEAR_PHOTOMETRIC = {32844: "LogL", 32845: "LogLuv", 34892: "LinearRaw"}  # linear light by definition
_EXIF_SRGB = 1  # EXIF ColorSpace: 1 = sRGB, 0xFFFF = uncalibrated (says nothing)


def _icc_gamma(icc: bytes) -> float | None:
    """Gamma of an ICC profile's tone curve (rTRC, or kTRC for grey): 1.0 for a linear curve; None
    where the profile has no readable curve."""
    try:
        count = struct.unpack(">I", icc[128:132])[0]
        tags = {icc[132 + 12 * i:136 + 12 * i]: struct.unpack(">II", icc[136 + 12 * i:144 + 12 * i])
                for i in range(min(count, 200))}
        offset, _ = tags.get(b"rTRC") or tags[b"kTRC"]
        kind = icc[offset:offset + 4]
        if kind == b"curv":
            n = struct.unpack(">I", icc[offset + 8:offset + 12])[0]
            if n == 0:
                return 1.0
            if n == 1:
                return struct.unpack(">H", icc[offset + 12:offset + 14])[0] / 256.0
            table = np.frombuffer(icc[offset + 12:offset + 12 + 2 * n], ">u2") / 65535.0
            mid = float(table[(n - 1) // 2])  # the curve at about 0.5 in: 0.5 ** gamma
            return float(np.log(max(mid, 1e-6)) / np.log(((n - 1) // 2) / (n - 1)))
        if kind == b"para":
            return struct.unpack(">i", icc[offset + 12:offset + 16])[0] / 65536.0
    except (KeyError, struct.error, ValueError, IndexError, ZeroDivisionError):
        return None
    return None


def tiff_encoding_hint(path: str | Path) -> tuple[bool | None, str]:
    """What a TIFF says of its own encoding, before any guess: (True: sRGB-encoded, False: linear light,
    None: it says nothing; the hint in words). Read, in order: an ICC profile's tone curve (gamma
    about 1: linear; 1.6 and more: encoded), a linear-light photometric (LinearRaw, LogL, LogLuv), the
    EXIF colour space sRGB."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            icc = tags.get(_ICC_TAG)
            photometric = tags.get(262)
            exif = tags.get(_EXIF_IFD)
            icc = bytes(icc.value) if icc is not None else None
            photometric = int(photometric.value) if photometric is not None else None
            colour_space = exif.value.get("ColorSpace") if exif is not None and isinstance(exif.value, dict) else None
    except Exception:  # tifffile raises many types for odd headers: no hint, the reader reports damage
        return None, "no colour hint in the file"
    gamma = _icc_gamma(icc) if icc else None
    if gamma is not None and (gamma <= 1.2 or gamma >= 1.6):
        return gamma >= 1.6, f"ICC profile: tone curve gamma {gamma:.1f}"
    if photometric in _LINEAR_PHOTOMETRIC:
        return False, f"photometric {_LINEAR_PHOTOMETRIC[photometric]}"
    if colour_space == _EXIF_SRGB:
        return True, "EXIF colour space sRGB"
    return None, "no colour hint in the file"
