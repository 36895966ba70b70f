"""dpcli.io.preview: the defocus-map preview's colour bar (issue 37: where the range labels sit, no
signed zeros, text readable when the report shrinks the preview)."""
from __future__ import annotations

import numpy as np

from dpcli.io.preview import _fmt, _label_rows, defocus_preview


def _ink_rows(img: np.ndarray, x0: int) -> np.ndarray:
    """Rows of the bar right of the ramp holding text (dark pixels)."""
    return np.flatnonzero((img[:, :, x0:] < 0.3).all(axis=0).any(axis=1))


def test_zero_is_written_without_a_sign() -> None:
    assert [_fmt(v) for v in (-0.04, 0.0, 0.049, -0.06, 2.25, -123.4)] == ["0", "0", "0", "-0.1", "+2.2", "-123"]


def test_range_labels_sit_beside_their_ticks_and_zero_gives_way() -> None:
    th = 16
    rows = _label_rows(400, th, [("max -1.0", 260), ("min -4.0", 380)])
    assert rows[:2] == [("max -1.0", 252), ("min -4.0", 400 - 2 * th)] and ("0", 192) in rows
    crowded = _label_rows(400, th, [("max +0.1", 198), ("min -0.1", 201)])
    tops = [top for _, top in crowded]
    assert tops == [190, 206] and "0" not in [t for t, _ in crowded]  # apart, and no 0 over them


def test_a_negative_map_has_no_label_among_the_positive_colours() -> None:
    """All in front of the focal plane (negative): no text in the bar's upper (red, positive) third
    but the scale's own +L label."""
    h, w = 300, 400
    img = defocus_preview(np.linspace(-4, -1, h * w).reshape(h, w).astype(np.float32))
    rows = _ink_rows(img, w + 2 + 8 + 2)
    th = 12 + 4
    assert rows.min() < th  # "+4.0 px" on top
    assert not ((rows > th + 2) & (rows < h // 3)).any()  # nothing else there ("max -1.0" sits at its tick)


def test_text_grows_with_the_map_width_for_the_report() -> None:
    """The report shows a preview about 420 px wide: text scales with the map so it stays about 11 px."""
    def bar(w: int, text_from: int) -> tuple[int, int]:  # (bar width, rows of its text holding ink)
        img = defocus_preview(np.linspace(-2, 2, 300 * w).reshape(300, w).astype(np.float32))
        return img.shape[2] - w, len(_ink_rows(img, w + text_from))

    (small, small_rows), (wide, wide_rows) = bar(400, 2 + 8 + 4), bar(1600, 2 + 32 + 4)  # right of the ramp
    assert wide >= 2.5 * small and wide_rows >= 2 * small_rows  # 4x the width: text about 3-4x as large
