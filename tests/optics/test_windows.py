"""dpcli.optics.windows against direct definitions: box means by a naive loop, raised-cosine
ramps and tapers, tent weights (and the renderer's patch weights built from them)."""
from __future__ import annotations

import math

import pytest
import torch

from dpcli.optics.render import patch_weights
from dpcli.optics.windows import box_mean, cosine_ramp, taper_window, tent_weights


def _naive_box(x: torch.Tensor, r: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    for i in range(h):
        for j in range(w):
            out[..., i, j] = x[..., max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean((-2, -1))
    return out


@pytest.mark.parametrize("r", [1, 3, 7, 20])
def test_box_mean_is_the_clipped_window_mean(r):
    g = torch.Generator().manual_seed(r)
    x = torch.rand(2, 3, 11, 14, generator=g)
    torch.testing.assert_close(box_mean(x, r), _naive_box(x, r))
    assert box_mean(x, r).dtype == torch.float32
    torch.testing.assert_close(box_mean(x[0, 0], r), _naive_box(x[0, 0], r))  # (H, W) too
    assert box_mean(x, 0) is x


def test_box_mean_keeps_tiny_values_next_to_large_ones_and_is_differentiable():
    x = torch.full((1, 400), 1e-9, dtype=torch.float32)
    x[0, :200] = 1.0
    out = box_mean(x[None], 3)[0]
    assert float(out[0, 300]) == pytest.approx(1e-9, rel=1e-5)  # float32 running sums would lose it
    y = torch.rand(8, 8, requires_grad=True)
    box_mean(y, 2).sum().backward()
    assert y.grad is not None and float(y.grad.min()) > 0


def test_cosine_ramp_and_taper():
    r = cosine_ramp(8)
    assert float(r[0]) == 0 and float(r[-1]) < 1 and bool((r[1:] > r[:-1]).all())
    torch.testing.assert_close(r, torch.tensor([0.5 - 0.5 * math.cos(math.pi * i / 8) for i in range(8)]))
    half = cosine_ramp(6, offset=0.5)
    torch.testing.assert_close(half + half.flip(0), torch.ones(6))  # pixel centres: complementary
    inner = cosine_ramp(4, offset=1, length=5)
    assert 0 < float(inner[0]) and float(inner[-1]) < 1
    w = taper_window(20, 5)
    torch.testing.assert_close(w[:5], cosine_ramp(5))
    torch.testing.assert_close(w[-5:], cosine_ramp(5).flip(0))
    assert bool((w[5:15] == 1).all())
    assert bool((taper_window(6, 0) == 1).all())


def test_tent_weights_partition_of_unity():
    w = tent_weights(100, [0, 25, 50, 75], 25)
    assert w.shape == (4, 100) and w.dtype == torch.float64
    torch.testing.assert_close(w.sum(0), torch.ones(100, dtype=torch.float64))
    centres = [12, 37, 62, 87]  # s + size/2 - 0.5, rounded
    assert [int(w[:, c].argmax()) for c in centres] == [0, 1, 2, 3]
    assert float(w[0, 0]) == 1 and float(w[3, 99]) == 1  # beyond the outer centres: nearest patch


def test_patch_weights_are_tent_products():
    pw = patch_weights((3, 4), 30, 40)
    wy = tent_weights(30, [0, 10, 20], 10)
    wx = tent_weights(40, [0, 10, 20, 30], 10)
    direct = (wy[:, None, :, None] * wx[None, :, None, :]).reshape(12, 30, 40).float()
    torch.testing.assert_close(pw, direct)
    torch.testing.assert_close(pw.sum(0), torch.ones(30, 40))


def test_smooth_mean_is_a_unit_sum_low_pass_of_the_asked_width():
    from dpcli.optics import smooth_mean

    x = torch.zeros(1, 1, 201, 201, dtype=torch.float64)
    x[..., 100, 100] = 1
    y = smooth_mean(x, 12.0)[0, 0]
    yy = torch.arange(201, dtype=torch.float64) - 100
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-9)
    var = float((y.sum(1) * yy**2).sum())  # r = 12 per pass: 3 r (r + 1) / 3 = 156 = 12.5^2
    assert var == pytest.approx(156.0, rel=1e-6)
    assert float(y[100, 100]) < 0.002  # spread out, not a copy


def test_restore_local_mean_fixes_a_brightness_drift_and_keeps_the_detail():
    from dpcli.optics import restore_local_mean

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 96, 128, generator=g, dtype=torch.float64)
    drifted = ref - 0.05 + 0.02 * torch.linspace(0, 1, 128, dtype=torch.float64)  # darker, with a ramp
    out = restore_local_mean(drifted, ref, 8.0)
    assert float((out - ref).abs().max()) < 2e-3 < 0.029 < float((drifted - ref).abs().min())
    detail = torch.zeros_like(ref)
    detail[..., 40:44, 60:64] = 0.5  # a small feature the reference lacks survives almost whole
    kept = restore_local_mean(ref + detail, ref, 8.0) - ref
    assert float(kept[..., 41, 61].min()) > 0.45


def test_by_rows_matches_the_full_frame_when_the_halo_covers_the_operator():
    from dpcli.optics.windows import by_rows, smooth_mean, smooth_radius

    torch.manual_seed(0)
    x = torch.rand(1, 3, 1300, 90)
    full = smooth_mean(x, 6.0)
    halo = 3 * smooth_radius(6.0)
    strips = by_rows(lambda t: smooth_mean(t, 6.0), [x], halo, rows=256)
    assert strips.shape == full.shape
    assert float((strips - full).abs().max()) < 1e-6
    short = by_rows(lambda t: smooth_mean(t, 6.0), [x], halo // 3, rows=256)  # too little context shows
    assert float((short - full).abs().max()) > 1e-4


def test_by_rows_keeps_pooling_phases_with_align():
    import torch.nn.functional as F

    from dpcli.optics.windows import by_rows

    x = torch.rand(1, 1, 1200, 40)

    def pooled(t):  # average 4 x 4 and back: reads a 4-row block
        return F.interpolate(F.avg_pool2d(t, 4), scale_factor=4, mode="nearest")

    assert torch.equal(by_rows(pooled, [x], 4, align=4, rows=250), pooled(x))
