"""Colour previews of signed defocus maps with a colour bar and the radius range in px.

A small built-in diverging colour map (blue = in front of the focal plane, white = in focus,
red = behind; docs/CONVENTIONS.md signs); the scale labels are drawn with Pillow's scalable font.
Used by ``defocus-map``, ``run --defocus-map`` and ``zeroshot``.

>>> import numpy as np
>>> defocus_preview(np.linspace(-3, 5, 200 * 300).reshape(200, 300)).shape
(3, 200, 370)
"""
from __future__ import annotations

import numpy as np

# diverging map anchors (t in [-1, 1]) -> RGB, like ColorBrewer RdBu reversed
_ANCHORS_T = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
_ANCHORS_RGB = np.array([[0.02, 0.19, 0.38], [0.26, 0.58, 0.76], [0.97, 0.97, 0.97],
                         [0.84, 0.38, 0.30], [0.40, 0.00, 0.12]])

def diverging_colormap(t: np.ndarray) -> np.ndarray:
    """t in [-1, 1] (any shape) -> RGB float32 (3, *shape)."""
    t = np.clip(np.nan_to_num(np.asarray(t, dtype=np.float64)), -1, 1)
    return np.stack([np.interp(t, _ANCHORS_T, _ANCHORS_RGB[:, c]) for c in range(3)]).astype(np.float32)


def _font(size: int):
    """Pillow's scalable default font at ``size`` px (a bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # old Pillow or no FreeType: the fixed-size default
        return ImageFont.load_default()


def _text_width(text: str, font) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - min(left, 0)) + 1


def _draw_labels(strip: np.ndarray, labels: list[tuple[str, int]], x: int, font) -> np.ndarray:
    """Black ``labels`` [(text, top y)] on ``strip`` (3, H, W) float in [0, 1], antialiased."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.round(np.clip(strip, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for text, y in labels:
        draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return (np.asarray(img, np.float32) / 255).transpose(2, 0, 1).copy()


def _fmt(v: float) -> str:
    """A signed radius for a label: one decimal (none from 100 px), and a plain 0, never -0.0 / +0.0."""
    text = f"{v:+.1f}" if abs(v) < 100 else f"{v:+.0f}"
    return "0" if float(text) == 0 else text


def _label_rows(h: int, th: int, ticks: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """(text, top y) of the bar's labels: the scale's ends, each range label beside its own tick (not
    beside the scale's end, which reads as a bound of that sign), and 0 where no range label sits."""
    rows = []
    last = -th
    for text, y in sorted(ticks, key=lambda t: t[1]):
        top = min(max(y - th // 2, th, last + th), h - 2 * th)
        rows.append((text, top))
        last = top
    middle = h // 2 - th // 2
    zero = [] if any(abs(top - middle) < th for _, top in rows) else [("0", middle)]
    return rows + zero


def defocus_preview(radius: np.ndarray, limit: float | None = None, bar_width: int | None = None) -> np.ndarray:
    """Signed radius map (H, W) in px -> RGB preview (3, H, W + bar) float32 in [0, 1].

    The colour scale is symmetric, +-``limit`` (default max |radius|), so white always means in
    focus. The bar on the right shows the scale with labels ``+L px``, ``0``, ``-L px`` and black
    ticks at the map's actual minimum and maximum, labelled ``max`` / ``min`` beside them. Text is
    about 1/32 of the map's width (at least 12 px): readable where the preview is shown shrunk to a
    column, as in ``run --report``.
    """
    r = np.asarray(radius, dtype=np.float64)
    if r.ndim == 3:
        r = r[0]
    h, w = r.shape
    finite = r[np.isfinite(r)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    lim = limit if limit is not None else max(abs(lo), abs(hi), 1e-6)
    image = diverging_colormap(r / lim)
    size = max(8, min(max(12, w // 32, min(h, 2000) // 400 * 11), h // 4))  # text height in px
    scale = max(1, size // 11)
    font = _font(size)
    ramp_w = 8 * scale
    th = size + size // 3  # a line of text
    ticks = {value: int(round((1 - value / lim) / 2 * (h - 1))) for value in (lo, hi)}
    ranges = [(f"max {_fmt(hi)}", ticks[hi]), (f"min {_fmt(lo)}", ticks[lo])] if h > 6 * th else []
    text = [(f"{_fmt(lim)} px", 0), (f"{_fmt(-lim)} px", h - th), *_label_rows(h, th, ranges)]
    bar = bar_width or 2 + ramp_w + 4 + max(_text_width(t, font) for t, _ in text) + 4
    strip = np.ones((3, h, bar), np.float32)
    ramp = np.linspace(1, -1, h)[:, None].repeat(ramp_w, 1)
    strip[:, :, 2:2 + ramp_w] = diverging_colormap(ramp)
    for y in ticks.values():  # ticks at the actual range
        strip[:, max(0, y - scale):y + scale + 1, 0:2 + ramp_w + 3] = 0.0
    strip = _draw_labels(strip, text, 2 + ramp_w + 4, font)
    return np.concatenate([image, strip], axis=2)


def write_defocus_outputs(out_dir, name: str, radius: np.ndarray, *, npy: bool = False, overwrite: bool = False,
                          protected=None, suffix: str = "_defocus") -> list[str]:
    """``NAME_defocus.tiff`` (float32, exact), ``NAME_defocus.png`` (preview), ``.npy`` on request."""
    from pathlib import Path

    from dpcli.io.images import atomic_write_bytes, write_image

    out_dir = Path(out_dir)
    r = np.asarray(radius, dtype=np.float32)
    r = r[0] if r.ndim == 3 else r
    written = [write_image(out_dir / f"{name}{suffix}.tiff", r[None], 32, overwrite=overwrite, protected=protected),
               write_image(out_dir / f"{name}{suffix}.png", defocus_preview(r), 8, overwrite=overwrite,
                           protected=protected)]
    if npy:
        import io

        buf = io.BytesIO()
        np.save(buf, r)
        target = out_dir / f"{name}{suffix}.npy"
        atomic_write_bytes(target, buf.getvalue(), overwrite=overwrite, protected=protected)
        written.append(target)
    return [str(p) for p in written]
