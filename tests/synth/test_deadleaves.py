"""Dead-leaves images (dpcli/synth/deadleaves.py): shape, range, determinism per seed, a covered canvas."""
from __future__ import annotations

import numpy as np

from dpcli.synth.deadleaves import dead_leaves


def test_shape_dtype_and_range():
    img = dead_leaves(48, seed=0, r_max=20.0, supersample=2)
    assert img.shape == (3, 48, 48) and img.dtype == np.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


def test_the_same_seed_gives_the_same_image_and_another_seed_another():
    a = dead_leaves(40, seed=3, r_max=15.0, supersample=2)
    b = dead_leaves(40, seed=3, r_max=15.0, supersample=2)
    c = dead_leaves(40, seed=4, r_max=15.0, supersample=2)
    assert np.array_equal(a, b)
    assert float(np.abs(a - c).mean()) > 0.05


def test_discs_cover_the_canvas_with_flat_regions_and_sharp_edges():
    img = dead_leaves(64, seed=1, r_min=4.0, r_max=24.0, supersample=2)
    assert float(img.max(0).min()) > 0.0  # no uncovered (black) pixel left
    grad = np.abs(np.diff(img, axis=-1)).max(0)
    assert float(np.median(grad)) < 0.01  # most neighbours lie inside one disc (gentle shading)
    assert float(grad.max()) > 0.2  # and disc edges are steps, not ramps
