"""Edge-aware and box filters of the classical estimators (dpcli/classical/filters.py)."""
from __future__ import annotations

import pytest
import torch

from dpcli.classical.filters import (box_mean, guided_coefficients, guided_filter, local_range, range_excess,
                                    upsample, weighted_guided_filter)


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

    def test_fast_guided_filter_is_the_full_one_on_a_smooth_signal_and_keeps_the_edge(self):
        """Coefficients on 2 x 2 blocks, upsampled and applied to the full guide (He & Sun): close
        to the full-resolution filter, the guide's edge kept at full resolution."""
        gen = torch.Generator().manual_seed(3)
        guide = torch.zeros(1, 1, 48, 61)
        guide[..., 31:] = 1.0
        ramp = torch.linspace(0, 1, 61).expand(1, 1, 48, 61)
        src = 0.5 * guide + 0.2 * ramp + 0.05 * torch.randn(1, 1, 48, 61, generator=gen)
        a, b = guided_coefficients(guide, src, 4, 1e-3)
        torch.testing.assert_close(a * guide + b, guided_filter(guide, src, 4, 1e-3))
        small = torch.nn.functional.avg_pool2d(guide, 2)
        a2, b2 = guided_coefficients(small, torch.nn.functional.avg_pool2d(src, 2), 2, 1e-3)
        a2, b2 = upsample(a2, (48, 61), 2), upsample(b2, (48, 61), 2)
        assert a2.shape == (1, 1, 48, 61)
        fast, full = a2 * guide + b2, guided_filter(guide, src, 4, 1e-3)
        assert float((fast - full).abs().mean()) < 0.01
        assert float(fast[..., 29].mean()) < 0.3 < 0.55 < float(fast[..., 32].mean())  # the step stays a step

    def test_upsample_is_bilinear_and_replicates_the_dropped_edge(self):
        x = torch.arange(12.0).view(1, 1, 3, 4)
        up = upsample(x, (7, 9), 2)
        assert up.shape == (1, 1, 7, 9)
        torch.testing.assert_close(up[..., :6, :8], torch.nn.functional.interpolate(x, size=(6, 8), mode="bilinear"))
        torch.testing.assert_close(up[..., 6, :], up[..., 5, :])
        torch.testing.assert_close(up[..., :, 8], up[..., :, 7])
        assert upsample(x, (3, 4), 1) is x


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
