"""Colour previews of signed defocus maps with a colour bar and the radius range in px.

numpy only: a small built-in diverging colour map (blue = in front of the focal plane, white =
in focus, red = behind; CONVENTIONS.md signs) and a 5x7 bitmap font for the scale labels.
Used by ``defocus-map``, ``run --defocus-map`` and ``zeroshot``.

>>> import numpy as np
>>> defocus_preview(np.linspace(-3, 5, 200 * 300).reshape(200, 300)).shape
(3, 200, 354)
"""
from __future__ import annotations

import numpy as np

# diverging map anchors (t in [-1, 1]) -> RGB, like ColorBrewer RdBu reversed
_ANCHORS_T = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
_ANCHORS_RGB = np.array([[0.02, 0.19, 0.38], [0.26, 0.58, 0.76], [0.97, 0.97, 0.97],
                         [0.84, 0.38, 0.30], [0.40, 0.00, 0.12]])

# 5x7 glyphs, one string of 7 rows of 5 bits per character
_FONT = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "+": "00000 00100 00100 11111 00100 00100 00000", "-": "00000 00000 00000 11111 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100", "p": "00000 00000 11110 10001 11110 10000 10000",
    "x": "00000 00000 10001 01010 00100 01010 10001", " ": "00000 00000 00000 00000 00000 00000 00000",
}


def diverging_colormap(t: np.ndarray) -> np.ndarray:
    """t in [-1, 1] (any shape) -> RGB float32 (3, *shape)."""
    t = np.clip(np.nan_to_num(np.asarray(t, dtype=np.float64)), -1, 1)
    return np.stack([np.interp(t, _ANCHORS_T, _ANCHORS_RGB[:, c]) for c in range(3)]).astype(np.float32)


def _text_mask(text: str, scale: int) -> np.ndarray:
    """Bool (7 * scale, 6 * len * scale) bitmap of ``text`` (unknown characters become blanks)."""
    glyphs = [np.array([[b == "1" for b in row] for row in _FONT.get(ch, _FONT[" "]).split()]) for ch in text]
    padded = [np.pad(g, ((0, 0), (0, 1))) for g in glyphs] or [np.zeros((7, 1), bool)]
    line = np.concatenate(padded, axis=1)
    return np.kron(line, np.ones((scale, scale), bool))


def _draw_text(canvas: np.ndarray, text: str, y: int, x: int, scale: int) -> None:
    mask = _text_mask(text, scale)
    h, w = canvas.shape[1:]
    y = int(np.clip(y, 0, max(h - mask.shape[0], 0)))
    mh, mw = min(mask.shape[0], h - y), min(mask.shape[1], w - x)
    if mh <= 0 or mw <= 0:
        return
    region = canvas[:, y:y + mh, x:x + mw]
    region[:, mask[:mh, :mw]] = 0.0


def _fmt(v: float) -> str:
    return f"{v:+.1f}" if abs(v) < 100 else f"{v:+.0f}"


def defocus_preview(radius: np.ndarray, limit: float | None = None, bar_width: int | None = None) -> np.ndarray:
    """Signed radius map (H, W) in px -> RGB preview (3, H, W + bar) float32 in [0, 1].

    The colour scale is symmetric, +-``limit`` (default max |radius|), so white always means in
    focus. The bar on the right shows the scale with labels ``+L px``, ``0``, ``-L px`` and black
    ticks at the map's actual minimum and maximum, whose values are printed under the bar.
    """
    r = np.asarray(radius, dtype=np.float64)
    if r.ndim == 3:
        r = r[0]
    h, w = r.shape
    finite = r[np.isfinite(r)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    lim = limit if limit is not None else max(abs(lo), abs(hi), 1e-6)
    image = diverging_colormap(r / lim)
    scale = max(1, min(h, 2000) // 400)
    ramp_w = 8 * scale
    labels = [f"{_fmt(lim)}px", f"{_fmt(-lim)}px", _fmt(hi), _fmt(lo)]
    bar = bar_width or 2 + ramp_w + 4 + 6 * scale * max(len(t) for t in labels) + 4
    strip = np.ones((3, h, bar), np.float32)
    ramp = np.linspace(1, -1, h)[:, None].repeat(ramp_w, 1)
    strip[:, :, 2:2 + ramp_w] = diverging_colormap(ramp)
    for value in (lo, hi):  # ticks at the actual range
        y = int(round((1 - value / lim) / 2 * (h - 1)))
        strip[:, max(0, y - scale):y + scale + 1, 0:2 + ramp_w + 3] = 0.0
    tx = 2 + ramp_w + 4
    th = 7 * scale
    _draw_text(strip, f"{_fmt(lim)}px", 0, tx, scale)
    _draw_text(strip, "0", h // 2 - th // 2, tx, scale)
    _draw_text(strip, f"{_fmt(-lim)}px", h - th, tx, scale)
    if h > 8 * th:  # the map's own range, below the +L label
        _draw_text(strip, f"{_fmt(hi)}", 2 * th, tx, scale)
        _draw_text(strip, f"{_fmt(lo)}", 3 * th + 2, tx, scale)
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
