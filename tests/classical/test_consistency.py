"""The blur check (dpcli.classical.consistency): a faithful deblur of a DP pair is
explained by the blur the pair measures, an over-deblurred one only by a larger disc."""
from __future__ import annotations

import pytest
import torch

from dpcli.classical.blind import wiener_deconvolve
from dpcli.classical.consistency import (DISC_LEVELS, ConsistencyConfig, check_pair, level_index,
                                         measured_radius, reblur)
from dpcli.optics import blur, disk_kernel
from dpcli.synth.degrade import dp_pair

from .dp_scenes import texture


def _scene(radius: float, size: int = 192, seed: int = 3):
    """A sharp texture with edges and its DP pair at one radius (linear light, hard half-disc kernels:
    the blur model the check assumes)."""
    sharp = texture(size, size, seed=seed).repeat(3, 1, 1)
    sharp[:, size // 3:2 * size // 3, size // 4:size // 2] = 0.9  # a bright block: edges to deblur
    left, right = dp_pair(sharp[None], torch.full((1, 1, size, size), radius))
    return sharp, left[0], right[0]


def test_level_index_hat_weights():
    pos, frac = level_index(torch.tensor([0.0, 2.0, 2.25, 9.0, -3.5, 99.0]))
    levels = torch.tensor(DISC_LEVELS)
    lower = levels[pos - 1] * (1 - frac) + levels[pos] * frac  # the weights reproduce the radius
    assert torch.allclose(lower, torch.tensor([0.0, 2.0, 2.25, 9.0, 3.5, DISC_LEVELS[-1]]))
    assert ((frac >= 0) & (frac <= 1)).all()


def test_reblur_uniform_radius_is_the_disc_blur():
    img = texture(96, 96, seed=1)
    want = blur(img[None], disk_kernel(torch.tensor([3.0]))[:, None], padding="reflect")[0]
    got = reblur(img, torch.full((96, 96), 3.0))
    inner = (slice(None), slice(16, 80), slice(16, 80))  # the borders are padded differently
    assert float((got - want)[inner].abs().max()) < 2e-3
    # between two levels: the hat blend of the two
    mid = reblur(img, torch.full((96, 96), 2.75))
    lo, hi = reblur(img, torch.full((96, 96), 2.5)), reblur(img, torch.full((96, 96), 3.0))
    assert torch.allclose(mid[inner], ((lo + hi) / 2)[inner], atol=1e-5)


def test_faithful_deblur_is_consistent_and_over_deblur_is_caught():
    sharp, left, right = _scene(3.0)
    cfg = ConsistencyConfig()
    faithful = check_pair(sharp, left, right, srgb=False, config=cfg)
    assert 0.85 <= faithful.scale <= 1.2 and not faithful.inconsistent(cfg)
    assert faithful.share > 0.8
    combined = (left + right) / 2
    over = wiener_deconvolve(combined[None], disk_kernel(torch.tensor([6.0]))[0], 1e-3)[0].clamp(0, 1)
    caught = check_pair(over, left, right, srgb=False, config=cfg)
    assert caught.scale >= 1.6 and caught.inconsistent(cfg)
    assert caught.share < 0.2
    # the blurred input itself needs less blur than measured, not more
    assert check_pair(combined, left, right, srgb=False, config=cfg).scale < 1.0


def test_windows_cover_large_frames_and_reduced_radius_agrees():
    sharp, left, right = _scene(2.0, size=320)
    full = measured_radius(left, right, srgb=False)
    reduced = measured_radius(left, right, srgb=False, config=ConsistencyConfig(full_res_pixels=10_000))
    assert reduced.shape == full.shape
    inner = (slice(48, -48), slice(48, -48))
    assert abs(float(reduced[inner].median()) - float(full[inner].median())) < 0.6
    small = ConsistencyConfig(tile=128, tiles=2)
    assert check_pair(sharp, left, right, srgb=False, config=small).scale == pytest.approx(
        check_pair(sharp, left, right, srgb=False).scale, abs=0.25)


def test_a_correction_the_measured_blur_does_not_explain_is_inconsistent():
    sharp, left, right = _scene(3.0)
    combined = (left + right) / 2
    waves = torch.sin(torch.arange(combined.shape[-1]) * (2 * torch.pi / 40))  # a pattern no blur explains
    invented = (combined + 0.05 * waves).clamp(0, 1)
    check = check_pair(invented, left, right, srgb=False)
    assert check.share < 0.05 and check.inconsistent()
    assert check_pair(sharp, left, right, srgb=False).share > 0.8
