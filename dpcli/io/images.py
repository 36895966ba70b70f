"""Read and write 8/16-bit PNG, TIFF (incl. float32) and JPEG images losslessly.

Arrays in memory follow docs/CONVENTIONS.md: float32 in [0, 1], shape (C, H, W), RGB order,
C = 1 for grey. 16-bit colour PNGs keep all 16 bits (imagecodecs/libpng; Pillow truncates).
Reading applies the EXIF orientation (pixels upright) and keeps the file's EXIF, ICC profile and
XMP (:class:`dpcli.io.metadata.PhotoMeta`); writing puts them into PNG, JPEG and TIFF outputs.
"""
from __future__ import annotations

import errno
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dpcli.errors import DiskFullError, InputError, OutputError
from dpcli.io.metadata import NO_META, PhotoMeta, attach_tiff_ifds, embed_png, orient_array, read_metadata, \
    tiff_extratags

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}
BitDepth = Literal[8, 16, 32]
FORMATS = ("png", "jpeg", "tiff")  # output format families
FORMAT_SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tiff"}
_FAMILY = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg"}
# the deepest bit depth each format holds (float only in TIFF, JPEG 8-bit)
_MAX_DEPTH = {"png": 16, "jpeg": 8, "tiff": 32}


@dataclass
class Image:
    """A decoded image: ``data`` float32 (C, H, W) in [0, 1]; ``bit_depth`` of the file (32 = float)."""

    data: np.ndarray
    bit_depth: BitDepth
    path: Path | None = None
    meta: PhotoMeta = NO_META

    @property
    def channels(self) -> int:
        return int(self.data.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.data.shape[1]), int(self.data.shape[2])


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


# A PNG's deflate stream expands at most ~1032x; a header claiming far more pixels than the file
# could hold is refused before any allocation (a 30000x20000 header on a few bytes).
_DEFLATE_MAX_RATIO = 1100
MAX_PIXELS = 400_000_000  # 400 MP per image: far beyond any camera, below a decompression bomb

_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
          ".jpg": (b"\xff\xd8\xff",)}
_MAGIC[".tiff"] = _MAGIC[".tif"]
_MAGIC[".jpeg"] = _MAGIC[".jpg"]
_KIND = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}


def probe_image(path: str | Path) -> tuple[int, int]:
    """Check an image file from its header only -> (height, width); cheap, allocates nothing big.

    Raises:
        InputError: missing, empty, not an image of its type, or a header that claims more pixels
            than the file could hold or than :data:`MAX_PIXELS`.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a folder, expected an image file", path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"unsupported image type '{suffix}' (use PNG, TIFF or JPEG)", path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(64)
    except PermissionError:
        raise InputError("permission denied", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or 'read error'})", path) from None
    kind = _KIND[suffix]
    if size == 0:
        raise InputError(f"empty file (0 bytes), not a {kind} image", path)
    if not head.startswith(_MAGIC[suffix]):
        raise InputError(f"not a {kind} image (the file's content is something else)", path)
    if kind == "PNG":
        if len(head) < 33 or head[12:16] != b"IHDR":
            raise InputError("truncated or corrupt PNG (no image header)", path)
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        bits, colour = head[24], head[25]
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
        raw_bytes = width * height * channels * max(bits, 8) // 8
        if raw_bytes > size * _DEFLATE_MAX_RATIO:
            raise InputError(f"PNG header claims {width}x{height} pixels but the file holds only {size} bytes "
                             "(truncated or corrupt)", path)
    elif kind == "TIFF":
        height, width = _tiff_size(path)
    else:
        height, width = _jpeg_size(path)
    if height == 0 or width == 0:
        raise InputError(f"empty image ({width}x{height} pixels)", path)
    if height * width > MAX_PIXELS:
        raise InputError(f"{width}x{height} pixels is beyond the {MAX_PIXELS // 1_000_000} MP this tool reads",
                         path)
    return height, width


def _tiff_size(path: Path) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            shape, axes = tif.series[0].shape, tif.series[0].axes
    except Exception:  # tifffile raises many types for corrupt headers
        raise InputError("truncated or corrupt TIFF (unreadable header)", path) from None
    y, x = axes.find("Y"), axes.find("X")
    if y < 0 or x < 0:
        raise InputError("unsupported TIFF layout: expected one grey, RGB or RGBA image", path)
    return int(shape[y]), int(shape[x])


def _jpeg_size(path: Path) -> tuple[int, int]:
    """(height, width) from a JPEG's start-of-frame marker."""
    data = path.read_bytes()
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
        i += 2 + length
    raise InputError("truncated or corrupt JPEG (no image size found)", path)


def _decode(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return _decode_tiff(path)
    if suffix == ".png":
        import imagecodecs

        return imagecodecs.png_decode(path.read_bytes())
    if suffix in (".jpg", ".jpeg"):
        import imageio.v3 as iio

        return iio.imread(path)
    raise InputError(f"unsupported image type '{suffix}' (use PNG, TIFF or JPEG)", path)


def _decode_tiff(path: Path) -> np.ndarray:
    """First image series of a TIFF as (H, W[, C]); planar (C, H, W) storage is transposed."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        array = series.asarray()
    if axes in ("YX", "YXS"):
        return array
    if axes == "SYX":
        return np.moveaxis(array, 0, -1)
    raise InputError(f"unsupported TIFF layout (axes {axes}, shape {array.shape}): expected one grey, "
                     "RGB or RGBA image, not a stack of pages", path)


class InputWarning(UserWarning):
    """Something in an input was repaired (NaN replaced, alpha dropped): the CLI prints it as one line."""


def _finite(data: np.ndarray, path: Path | None) -> np.ndarray:
    """Float pixels with NaN / Inf replaced (NaN, -Inf -> 0; +Inf -> the largest finite value), with a
    warning that says how many; an image with no finite value at all is refused."""
    bad = ~np.isfinite(data)
    count = int(bad.sum())
    if not count:
        return data
    if count == data.size:
        raise InputError(f"all {count} values are NaN or infinite (no image data)", path)
    top = float(data[~bad].max())
    data = np.nan_to_num(data, nan=0.0, posinf=max(top, 1.0), neginf=0.0)
    where = f"{path}: " if path is not None else ""
    warnings.warn(f"{where}{count} of {data.size} values were NaN or infinite; replaced (NaN and -Inf by 0, "
                  f"+Inf by {max(top, 1.0):g})", InputWarning, stacklevel=3)
    return data


def to_unit_float(array: np.ndarray, path: Path | None = None) -> tuple[np.ndarray, BitDepth]:
    """Integer or float pixels (H, W[, C]) -> float32 (C, H, W) in [0, 1] and the bit depth."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"expected a 2-D image, got an array of shape {array.shape}", path)
    if array.dtype == np.uint8:
        data, depth = array.astype(np.float32) / 255.0, 8
    elif array.dtype == np.uint16:
        data, depth = array.astype(np.float32) / 65535.0, 16
    elif np.issubdtype(array.dtype, np.floating):
        data, depth = _finite(array.astype(np.float32), path), 32
    else:
        raise InputError(f"unsupported pixel type {array.dtype}", path)
    channels = data.shape[2]
    if channels in (2, 4):
        warnings.warn(f"{path}: alpha channel dropped", InputWarning, stacklevel=3)
        data = data[:, :, : channels - 1]
    elif channels not in (1, 3):
        raise InputError(f"unsupported channel count {channels} (grey, RGB or RGBA)", path)
    return np.ascontiguousarray(data.transpose(2, 0, 1)), depth  # type: ignore[return-value]


def read_array(path: str | Path, *, upright: bool = True) -> np.ndarray:
    """Decode an image file into its pixel values (H, W[, C]) without scaling (raw counts), turned
    upright by the file's EXIF orientation (``upright=False``: as stored, e.g. DP views, whose
    disparity is horizontal on the sensor).

    Raises:
        InputError: missing, unreadable, truncated or unsupported file (message names the file).
    """
    return _read(Path(path), upright)[0]


def _read(path: Path, upright: bool = True) -> tuple[np.ndarray, PhotoMeta]:
    """-> (pixel values, upright unless told otherwise; metadata) of an image file."""
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a folder, expected an image file", path)
    probe_image(path)  # header first: empty, wrong type or impossible sizes fail before decoding
    try:
        array = _decode(path)
    except InputError:
        raise
    except PermissionError:
        raise InputError("permission denied", path) from None
    except MemoryError:
        raise InputError("too large to decode in the memory available", path) from None
    except Exception:  # decoders raise many types for corrupt data
        raise InputError(f"cannot decode (truncated or corrupt {_KIND.get(path.suffix.lower(), 'image')})",
                         path) from None
    array = np.asarray(array)
    if array.size == 0:
        raise InputError("empty image (no pixels)", path)
    meta = read_metadata(path)
    return (orient_array(array, meta.orientation) if upright else array), meta


def read_image(path: str | Path, *, upright: bool = True) -> Image:
    """Read an image file into an :class:`Image` (float32 (C, H, W) in [0, 1]), turned upright by
    its EXIF orientation (``upright=False``: as stored; ``meta.orientation`` says how to turn it).

    Raises:
        InputError: missing, unreadable, truncated or unsupported file (message names the file).
    """
    path = Path(path)
    array, meta = _read(path, upright)
    data, depth = to_unit_float(array, path)
    return Image(data=data, bit_depth=depth, path=path, meta=meta)


def quantize(data: np.ndarray, bit_depth: BitDepth) -> np.ndarray:
    """float (C, H, W) in [0, 1] -> (H, W[, C]) array of the file's pixel type (round half to even)."""
    hwc = np.asarray(data, dtype=np.float32).transpose(1, 2, 0)
    if hwc.shape[2] == 1:
        hwc = hwc[:, :, 0]
    if bit_depth == 32:
        return np.ascontiguousarray(hwc, dtype=np.float32)
    peak = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scaled = np.clip(hwc, 0.0, 1.0)  # one float32 frame, scaled and rounded in place
    scaled *= np.float32(peak)
    return np.ascontiguousarray(np.rint(scaled, out=scaled).astype(dtype))


def image_format(path: str | Path | None) -> str | None:
    """Format family of an image file from its name: png | jpeg | tiff, None for other files."""
    return _FAMILY.get(Path(path).suffix.lower()) if path is not None else None


def output_format(requested: str, source: str | Path | None, bit_depth: int) -> tuple[str, int]:
    """(format, bit depth) of an output made from ``source`` at ``bit_depth``.

    ``requested`` "same" keeps the source's format family (PNG for raw files), except that float
    data goes to TIFF; a named format keeps the depth where it can hold it, else its deepest
    (PNG 16-bit, JPEG 8-bit).
    """
    if requested == "same":
        fmt = image_format(source) or "png"
        if bit_depth == 32:
            fmt = "tiff"
    elif requested in FORMATS:
        fmt = requested
    else:
        raise OutputError(f"unknown output format '{requested}' (png, jpeg, tiff or same)")
    return fmt, min(bit_depth, _MAX_DEPTH[fmt])


def _encode(path: Path, array: np.ndarray, meta: PhotoMeta = NO_META, quality: int = 95) -> bytes:
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import io

        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, photometric="rgb" if array.ndim == 3 else "minisblack",
                         compression="zlib" if array.dtype != np.float32 else None, metadata=None,
                         iccprofile=meta.icc, extratags=tiff_extratags(meta))
        return attach_tiff_ifds(buffer.getvalue(), meta)
    if suffix == ".png":
        if array.dtype == np.float32:
            raise OutputError("PNG cannot hold float data; use --format tiff or --bit-depth 8|16", path)
        import imagecodecs

        return embed_png(imagecodecs.png_encode(array, level=6), meta)
    if suffix in (".jpg", ".jpeg"):
        if array.dtype != np.uint8:
            raise OutputError("JPEG holds 8-bit data only; use --bit-depth 8 or --format png|tiff", path)
        import io

        from PIL import Image as PILImage

        from dpcli.io.metadata import EXIF_HEADER

        buffer = io.BytesIO()
        extra = {"exif": EXIF_HEADER + meta.exif} if meta.exif else {}
        if meta.icc:
            extra["icc_profile"] = meta.icc
        if meta.xmp:
            extra["xmp"] = meta.xmp
        PILImage.fromarray(array).save(buffer, format="JPEG", quality=quality, **extra)
        return buffer.getvalue()
    raise OutputError(f"unsupported output type '{suffix}' (use .png, .tiff or .jpg)", path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, payload: bytes, *, overwrite: bool = False,
                       protected: set[Path] | None = None) -> None:
    """Write ``payload`` to ``path`` through a temp file + rename, refusing to touch inputs.

    Raises:
        OutputError: the path is a protected input, exists without ``overwrite``, or cannot be written.
    """
    path = Path(path)
    resolved = path.resolve()
    if protected and resolved in {p.resolve() for p in protected}:
        raise OutputError("refusing to overwrite an input file", path)
    if path.exists() and not overwrite:
        raise OutputError("output exists (use --overwrite to replace it)", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path.parent) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the user's normal mode
        os.replace(tmp, path)
    except OSError as exc:  # e.g. the output path is a folder, the disk is full
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"cannot write ({exc.strerror or exc})", path, len(payload)) from None
        raise OutputError(f"cannot write ({exc.strerror or exc})", path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_image(path: str | Path, data: np.ndarray, bit_depth: BitDepth = 16, *,
                overwrite: bool = False, protected: set[Path] | None = None, meta: PhotoMeta = NO_META,
                quality: int = 95) -> Path:
    """Write float (C, H, W) data in [0, 1] as PNG/TIFF/JPEG at ``bit_depth`` (8, 16 or 32 = float TIFF).

    ``meta`` (EXIF, ICC profile, XMP of the input) goes into the file; ``quality`` (1-100) is JPEG's.
    The write is atomic; an existing file is replaced only with ``overwrite``; a path in
    ``protected`` (the run's inputs) is never written.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    payload = _encode(path, quantize(data, bit_depth), meta, quality)
    atomic_write_bytes(path, payload, overwrite=overwrite, protected=protected)
    return path
