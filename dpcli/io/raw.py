"""Raw dual-pixel input: Pixel-style raw planes stored as images, and Canon Dual Pixel RAW via rawpy.

Pixel-style planes (docs/CONVENTIONS.md, Pixel 4): each view is a 16-bit grey image of raw counts;
``v = max(raw - black_level, 0) / white_level`` and the right view is multiplied by the
101x101 box-filtered ratio ``white_sheet_left / white_sheet_right`` (both preprocessed alike).

Dual Pixel RAW (Canon .CR2 from 5D Mark IV / EOS R / R5, or a two-frame DNG): frame 0 = both
photodiodes (A + B), frame 1 = one photodiode (A), chosen with rawpy's ``shot_select``. The other
view is (frame 0 - black) - (frame 1 - black); pixels where frame 0 clips are marked invalid. All
three images go through the same LibRaw rendering, so (left + right) / 2 == combined in linear light.
Which photodiode is "left" is not documented: left = frame 1 here; ``--swap-lr`` exchanges them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpcli.errors import InputError
from dpcli.io.images import read_array

PIXEL4_BLACK_LEVEL = 1024
PIXEL4_WHITE_LEVEL = 2**14 - 1
VIGNETTING_BOX = 101


def _to_numpy(x: Any) -> tuple[np.ndarray, Any]:
    """Array or tensor -> float64 numpy array, plus what is needed to convert the result back."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().double().numpy(), (x.device,)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return np.asarray(x, dtype=np.float64), None


def _back(x: np.ndarray, like: Any) -> Any:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if like is None:
        return x
    import torch

    return torch.from_numpy(x).to(like[0])


def normalize_plane(raw: Any, black_level: float = PIXEL4_BLACK_LEVEL,
                    white_level: float = PIXEL4_WHITE_LEVEL) -> np.ndarray:
    """Raw counts (..., H, W) -> float32 ``max(raw - black_level, 0) / white_level``.

    ``white_level`` is the divisor itself (Pixel 4 data: 14-bit, 2^14 - 1), as in docs/CONVENTIONS.md.
    """
    if white_level <= 0:
        raise ValueError(f"white_level must be positive, got {white_level}")
    array, _ = _to_numpy(raw)
    return (np.maximum(array - black_level, 0.0) / white_level).astype(np.float32)


def vignetting_gain(white_left: Any, white_right: Any, black_level: float = PIXEL4_BLACK_LEVEL,
                    white_level: float = PIXEL4_WHITE_LEVEL, box: int = VIGNETTING_BOX) -> np.ndarray:
    """Per-pixel gain for the right view: box(white_left) / box(white_right), float32 (..., H, W).

    The white sheets are raw counts of a uniformly lit white target, preprocessed like the views.
    """
    from scipy.ndimage import uniform_filter

    wl = normalize_plane(white_left, black_level, white_level).astype(np.float64)
    wr = normalize_plane(white_right, black_level, white_level).astype(np.float64)
    if wl.shape != wr.shape:
        raise InputError(f"white-sheet sizes differ: left {wl.shape}, right {wr.shape}")
    size = (1,) * (wl.ndim - 2) + (box, box)  # filter only over H and W
    fl = uniform_filter(wl, size=size, mode="reflect")
    fr = uniform_filter(wr, size=size, mode="reflect")
    gain = fl / np.maximum(fr, 1e-12)
    return np.where(fr > 1e-12, gain, 1.0).astype(np.float32)


def preprocess_planes(left: Any, right: Any, black_level: float = PIXEL4_BLACK_LEVEL,
                      white_level: float = PIXEL4_WHITE_LEVEL,
                      white_sheet: tuple[Any, Any] | np.ndarray | None = None) -> tuple[Any, Any]:
    """Pixel-style raw DP planes -> preprocessed (left, right) float32 views.

    Args:
        left, right: raw counts, numpy arrays or torch tensors of shape (..., H, W).
        black_level: subtracted, negatives clipped to 0.
        white_level: divisor after black subtraction (2^14 - 1 for Pixel 4).
        white_sheet: ``(white_left, white_right)`` raw counts of a white-sheet capture, or a gain
            map from :func:`vignetting_gain`; the right view is multiplied by the gain.

    Returns:
        (left, right) float32 of the input's type (numpy or torch) and shape; not clipped at 1.
    """
    lnp, like = _to_numpy(left)
    rnp, _ = _to_numpy(right)
    if lnp.shape != rnp.shape:
        raise InputError(f"left and right raw planes differ in size: {lnp.shape} vs {rnp.shape}")
    lv = normalize_plane(lnp, black_level, white_level)
    rv = normalize_plane(rnp, black_level, white_level)
    if white_sheet is not None:
        if isinstance(white_sheet, (tuple, list)):
            gain = vignetting_gain(white_sheet[0], white_sheet[1], black_level, white_level)
        else:
            gain, _ = _to_numpy(white_sheet)
        if gain.shape[-2:] != rv.shape[-2:]:
            raise InputError(f"white-sheet size {gain.shape[-2:]} differs from the views' {rv.shape[-2:]}")
        rv = (rv * gain).astype(np.float32)
    return _back(lv, like), _back(rv, like)


def _read_counts(path: str | Path) -> np.ndarray:
    """A raw plane file -> (1, H, W) float64 counts; integer images only (raw counts)."""
    array = read_array(path, upright=False)  # sensor planes: as stored
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"raw plane must hold integer counts, got {array.dtype}", path)
    if array.ndim == 3:
        if array.shape[2] != 1:
            raise InputError(f"raw plane must be single-channel (grey), got {array.shape[2]} channels", path)
        array = array[:, :, 0]
    return array[None].astype(np.float64)


def read_raw_planes(left_path: str | Path, right_path: str | Path, *,
                    black_level: float = PIXEL4_BLACK_LEVEL, white_level: float = PIXEL4_WHITE_LEVEL,
                    white_sheet_left: str | Path | None = None,
                    white_sheet_right: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read and preprocess a Pixel-style pair of raw-plane images -> (left, right) float32 (1, H, W).

    Raises:
        InputError: unreadable files, a non-grey plane, sizes that differ, or only one white sheet.
    """
    left, right = _read_counts(left_path), _read_counts(right_path)
    if left.shape != right.shape:
        raise InputError(f"left {left.shape[1:]} and right {right.shape[1:]} differ in size "
                         f"({Path(right_path).name})", left_path)
    sheet = None
    if (white_sheet_left is None) != (white_sheet_right is None):
        given = white_sheet_left if white_sheet_left is not None else white_sheet_right
        raise InputError("vignetting calibration needs both white sheets (left and right)", given)
    if white_sheet_left is not None and white_sheet_right is not None:
        wl, wr = _read_counts(white_sheet_left), _read_counts(white_sheet_right)
        if wl.shape != left.shape or wr.shape != left.shape:
            raise InputError(f"white sheets {wl.shape[1:]}/{wr.shape[1:]} differ in size from the views "
                             f"{left.shape[1:]}", white_sheet_left)
        sheet = (wl, wr)
    return preprocess_planes(left, right, black_level, white_level, sheet)


# ----------------------------------------------------------------------------- Dual Pixel RAW (rawpy)
@dataclass
class DualPixelRaw:
    """Views rendered from a Dual Pixel RAW file: float32 (3, H, W) each, in [0, 1].

    ``left`` = frame 1 (one photodiode), ``right`` = frame 0 - frame 1 (the other one), both scaled
    by 2 so that ``(left + right) / 2`` (in linear light) equals ``combined`` = frame 0 (A + B).
    ``valid`` (H, W) is False where frame 0 clips on the sensor or the rendering clips.
    """

    left: np.ndarray
    right: np.ndarray
    combined: np.ndarray
    valid: np.ndarray
    output: str


def split_dual_pixel(frame0: np.ndarray, frame1: np.ndarray, black0: np.ndarray | float,
                     black1: np.ndarray | float, white_level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw Bayer counts of both frames -> (A, B, clipped): black-subtracted counts per photodiode.

    A = frame1 - black1 (one photodiode); B = (frame0 - black0) - (frame1 - black1) (the other);
    ``clipped`` marks where frame 0 reached the white level: there B is unknown, not made up.
    """
    f0 = frame0.astype(np.int32) - np.asarray(black0, dtype=np.int32)
    f1 = frame1.astype(np.int32) - np.asarray(black1, dtype=np.int32)
    a = np.clip(f1, 0, None)
    b = np.clip(f0 - f1, 0, None)
    clipped = frame0 >= white_level
    return a, b, clipped


def _per_pixel_black(raw: Any) -> np.ndarray:
    """Black level of every pixel of ``raw.raw_image`` from the per-CFA-channel levels."""
    levels = np.asarray(raw.black_level_per_channel, dtype=np.int32)
    colors = np.asarray(raw.raw_colors)
    if colors.shape != raw.raw_image.shape:  # no per-pixel colour map: one level for all
        return np.full(raw.raw_image.shape, int(round(levels.mean())), dtype=np.int32)
    return levels[colors]


def _open_frame(path: Path, shot: int) -> Any:
    """Open frame ``shot`` of a raw file (rawpy ``shot_select``); InputError for a missing frame."""
    import rawpy

    raw = rawpy.RawPy()
    # Set before open_file: LibRaw picks a DNG's frame while identifying the file (rawpy.imread
    # sets shot_select only after opening, which a multi-frame DNG ignores).
    raw.set_unpack_params(shot_select=shot)
    try:
        raw.open_file(str(path))
        raw.unpack()
    except rawpy.LibRawRequestForNonexistentImageError:
        raw.close()
        raise InputError(f"raw file has no frame {shot}: not a Dual Pixel RAW (needs frame 0 = A+B and "
                         "frame 1 = one photodiode)", path) from None
    except (rawpy.LibRawError, OSError) as exc:
        raw.close()
        detail = " ".join(str(exc).split()) or "unreadable"
        raise InputError(f"cannot read raw file ({detail})", path) from None
    if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3:
        raw.close()
        raise InputError("only Bayer (single-plane RGB) raw files are supported", path)
    return raw


def _render(raw: Any, counts: np.ndarray, black: np.ndarray, demosaic: str) -> tuple[np.ndarray, np.ndarray]:
    """Black-subtracted Bayer counts -> linear RGB float (H, W, 3) (1 = 65535) and its clip mask.

    Every call uses the same LibRaw settings (camera white balance, sRGB primaries, linear
    transfer, no auto-brightening, no rotation), so the rendering is linear in ``counts``
    up to clipping and 16-bit rounding.
    """
    import rawpy

    algorithms = {"linear": rawpy.DemosaicAlgorithm.LINEAR, "ahd": rawpy.DemosaicAlgorithm.AHD,
                  "dcb": rawpy.DemosaicAlgorithm.DCB}
    if demosaic not in algorithms:
        raise ValueError(f"demosaic must be one of {sorted(algorithms)}, got {demosaic!r}")
    raw.raw_image[...] = np.clip(counts + black, 0, 65535).astype(np.uint16)
    rgb = raw.postprocess(demosaic_algorithm=algorithms[demosaic], use_camera_wb=True, use_auto_wb=False,
                          no_auto_bright=True, bright=1.0, gamma=(1, 1), output_bps=16, user_flip=0,
                          output_color=rawpy.ColorSpace.sRGB, highlight_mode=rawpy.HighlightMode.Clip)
    clip = (rgb >= 65535).any(axis=2)
    out = rgb.astype(np.float32)
    out *= 1.0 / 65535.0  # in place: a 30-megapixel frame is 360 MB as float32
    return out, clip


def _to_output_grid(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resample of a visible-area mask to the rendered image's (H, W)."""
    if mask.shape == shape:
        return mask
    rows = np.minimum((np.arange(shape[0]) * mask.shape[0]) // shape[0], mask.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * mask.shape[1]) // shape[1], mask.shape[1] - 1)
    return mask[np.ix_(rows, cols)]


def _visible(raw: Any, array: np.ndarray) -> np.ndarray:
    sizes = raw.sizes
    return array[sizes.top_margin:sizes.top_margin + sizes.height, sizes.left_margin:sizes.left_margin + sizes.width]


def _finish(views: list[np.ndarray], output: str) -> list[np.ndarray]:
    """Linear (H, W, 3) -> clipped to [0, 1], sRGB-encoded on request, (3, H, W) float32."""
    views = [np.clip(v, 0.0, 1.0, out=v) for v in views]
    if output == "srgb":
        import torch

        from dpcli.optics.color import linear_to_srgb

        views = [linear_to_srgb(torch.from_numpy(v)).numpy() for v in views]
    return [np.ascontiguousarray(v.transpose(2, 0, 1), dtype=np.float32) for v in views]


def _check_args(path: Path, output: str) -> None:
    if not path.exists():
        raise InputError("no such file", path)
    if output not in ("srgb", "linear"):
        raise ValueError(f"output must be 'srgb' or 'linear', got {output!r}")


def read_dual_pixel_raw(path: str | Path, output: str = "srgb", demosaic: str = "linear") -> DualPixelRaw:
    """Read a Canon Dual Pixel RAW (.CR2) or two-frame DNG -> left/right/combined views and valid mask.

    Args:
        output: "srgb" (sRGB-encoded, like DPDD files) or "linear" (linear light, sRGB primaries).
        demosaic: "linear" (default: keeps left + right == combined exactly up to rounding), "ahd", "dcb".

    Raises:
        InputError: unreadable file, a raw without a second frame, or frames of different sizes.
    """
    from scipy.ndimage import binary_dilation

    path = Path(path)
    _check_args(path, output)
    raw0 = _open_frame(path, 0)
    try:
        raw1 = _open_frame(path, 1)
        try:
            frame0, frame1 = raw0.raw_image.copy(), raw1.raw_image.copy()
            if frame0.shape != frame1.shape:
                raise InputError(f"frames 0 and 1 differ in size ({frame0.shape} vs {frame1.shape})", path)
            black0 = _per_pixel_black(raw0)
            a, b, clipped = split_dual_pixel(frame0, frame1, black0, _per_pixel_black(raw1), raw0.white_level)
            del frame1
        finally:
            raw1.close()
        clipped = _visible(raw0, clipped)
        combined, clip_c = _render(raw0, frame0.astype(np.int32) - black0, black0, demosaic)
        del frame0
        view_a, clip_a = _render(raw0, a, black0, demosaic)
        del a
        view_b, clip_b = _render(raw0, b, black0, demosaic)
    finally:
        raw0.close()
    # Each view holds half the light of frame 0: x2 puts it in the combined image's units.
    view_a *= 2.0
    view_b *= 2.0
    bad = _to_output_grid(clipped, combined.shape[:2]) | clip_c | clip_a | clip_b
    bad |= (view_a > 1.0).any(axis=2) | (view_b > 1.0).any(axis=2)
    # Demosaicing spreads a clipped photosite over its neighbours.
    reach = 1 if demosaic == "linear" else 2
    bad = binary_dilation(bad, structure=np.ones((2 * reach + 1,) * 2, bool))
    left, right, combined = _finish([view_a, view_b, combined], output)
    return DualPixelRaw(left, right, combined, ~bad, output)


def read_raw_image(path: str | Path, output: str = "srgb", demosaic: str = "linear") -> np.ndarray:
    """Render frame 0 of a raw file (the ordinary A+B capture) like :func:`read_dual_pixel_raw`'s
    ``combined`` -> float32 (3, H, W). Works for any Bayer raw, dual-pixel or not."""
    path = Path(path)
    _check_args(path, output)
    raw = _open_frame(path, 0)
    try:
        black = _per_pixel_black(raw)
        rgb, _ = _render(raw, raw.raw_image.astype(np.int32) - black, black, demosaic)
    finally:
        raw.close()
    return _finish([rgb], output)[0]
