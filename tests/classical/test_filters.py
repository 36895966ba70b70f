"""Edge-aware and box filters of the classical estimators (dpcli/classical/filters.py)."""
from __future__ import annotations

import pytest
import torch

from dpcli.classical.filters import box_mean, guided_filter, local_range, range_excess, weighted_guided_filter


class TestFilters:
    def test_box_mean_matches_bruteforce(self):
        x = torch.rand(1, 2, 23, 31, dtype=torch.float64)
        r = 3
        ref = torch.zeros_like(x)
        for i in range(23):
            for j in range(31):
                ref[..., i, j] = x[..., max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean((-2, -1))
        torch.testing.assert_close(box_mean(x, r), ref)

    def test_guided_filter_keeps_edges(self):
        guide = torch.zeros(1, 1, 40, 40)
        guide[..., 20:] = 1.0
        noisy = guide + 0.1 * torch.randn(1, 1, 40, 40, generator=torch.Generator().manual_seed(0))
        out = guided_filter(guide, noisy, 4, 1e-3)
        assert (out - guide).abs().mean() < 0.5 * (noisy - guide).abs().mean()
        assert out[..., :, 17].mean() < 0.1 and out[..., :, 22].mean() > 0.9  # edge stays sharp


def test_local_range_bounds_every_pixel_and_is_the_clipped_window_min_max():
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(1))
    r = 2
    lo, hi = local_range(x, r)
    assert lo.shape == hi.shape == x.shape
    assert bool((lo <= x).all()) and bool((x <= hi).all())
    for i, j in [(0, 0), (6, 8), (12, 16), (1, 15)]:  # corners and the middle: the window clips
        win = x[..., max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
        torch.testing.assert_close(lo[..., i, j], win.amin((-2, -1)))
        torch.testing.assert_close(hi[..., i, j], win.amax((-2, -1)))
    lo0, hi0 = local_range(x, 0)
    assert lo0 is x and hi0 is x


def test_local_range_of_a_step_spreads_by_the_radius_only():
    x = torch.zeros(1, 1, 8, 20)
    x[..., 10:] = 1.0
    lo, hi = local_range(x, 3)
    row_hi, row_lo = hi[0, 0, 4], lo[0, 0, 4]
    assert row_hi[:7].sum() == 0 and bool((row_hi[7:] == 1).all())  # the bright side reaches 3 px left
    assert bool((row_lo[:13] == 0).all()) and bool((row_lo[13:] == 1).all())


def test_range_excess_is_zero_inside_and_the_overshoot_outside():
    ref = torch.full((1, 3, 4, 4), 0.5)
    lo, hi = local_range(ref, 1)
    inside = ref + 1 / 255  # within the 2/255 tolerance
    assert float(range_excess(inside, lo, hi).max()) == 0.0
    ringing = ref.clone()
    ringing[0, 1, 2, 2] = 0.8  # one channel overshoots by 0.3
    excess = range_excess(ringing, lo, hi)
    assert excess.shape == (1, 4, 4)
    assert float(excess[0, 2, 2]) == pytest.approx(0.3 - 2 / 255, abs=1e-6)
    assert float(excess.sum() - excess[0, 2, 2]) == 0.0


def test_weighted_guided_filter_fills_unconfident_pixels_from_confident_neighbours():
    guide = torch.zeros(1, 1, 32, 32)
    guide[..., 16:] = 1.0
    src = guide * 4.0  # the truth follows the guide: 0 left, 4 right
    noisy = src.clone()
    noisy[..., 8, 4] = 10.0  # one wild value on each side, with no confidence
    noisy[..., 20, 24] = -10.0
    weight = torch.ones_like(src)
    weight[..., 8, 4] = 0.0
    weight[..., 20, 24] = 0.0
    out = weighted_guided_filter(guide, noisy, weight, 3, 1e-4)
    assert float(out[..., 8, 4]) == pytest.approx(0.0, abs=1e-2)
    assert float(out[..., 20, 24]) == pytest.approx(4.0, abs=1e-2)
    plain = guided_filter(guide, noisy, 3, 1e-4)  # unweighted: the wild value leaks
    assert abs(float(plain[..., 8, 4])) > 0.1
