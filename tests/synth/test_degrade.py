"""Broad-benchmark degradations (dpcli.synth.degrade) and dead-leaves images (dpcli.synth.deadleaves)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.optics import disk_kernel
from dpcli.synth import degrade
from dpcli.synth.deadleaves import dead_leaves


def test_half_disk_kernels_split_the_disc_and_swap_with_the_sign():
    left, right = degrade.half_disk_kernels(3.0)
    assert float(left.sum()) == pytest.approx(1.0) and float(right.sum()) == pytest.approx(1.0)
    assert torch.allclose(left, right.flip(-1))
    assert torch.allclose((left + right) / 2, disk_kernel(torch.tensor([3.0])), atol=1e-6)
    x = torch.arange(left.shape[-1]) - left.shape[-1] // 2
    assert float((left[0].sum(0) * x).sum()) > 0.5  # the left kernel sits at +x (CONVENTIONS.md)
    neg_l, neg_r = degrade.half_disk_kernels(-3.0)
    assert torch.equal(neg_l, right) and torch.equal(neg_r, left)


def test_polygon_kernel_is_a_normalised_aperture():
    k = degrade.polygon_kernel(3.0)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    delta = degrade.polygon_kernel(0.0, size=5)[0]
    assert float(delta[2, 2]) == 1.0 and float(delta.sum()) == 1.0


def test_constant_radius_map_gives_the_uniform_blur():
    x = torch.from_numpy(dead_leaves(64, seed=1))[None]
    radius = degrade.radius_ramp(64, 64, 2.0, 2.0)
    assert torch.allclose(degrade.varying_blur(x, radius), degrade.uniform_blur(x, "disc", 2.0), atol=1e-5)
    ramp = degrade.varying_blur(x, degrade.radius_ramp(64, 64, 0.0, 4.0))
    assert torch.allclose(ramp[..., 0, :], x[..., 0, :], atol=1e-5)  # radius 0 on the top row


def test_dp_pair_averages_to_the_combined_blur_and_is_displaced():
    x = torch.from_numpy(dead_leaves(64, seed=2))[None]
    left, right = degrade.dp_pair(x, degrade.radius_ramp(64, 64, 3.0, 3.0))
    assert torch.allclose((left + right) / 2, degrade.uniform_blur(x, "disc", 3.0), atol=1e-5)
    assert not torch.allclose(left, right, atol=1e-3)


def test_noise_and_jpeg_are_what_they_say():
    x = torch.full((1, 3, 64, 64), 0.25)
    noisy = degrade.poisson_gaussian(x, photons=100.0, read=0.0, seed=0)
    assert float(noisy.std()) == pytest.approx(0.05, rel=0.1)  # sqrt(0.25 / 100)
    assert torch.equal(noisy, degrade.poisson_gaussian(x, 100.0, 0.0, seed=0))
    img = np.full((3, 32, 32), 0.5, np.float32)
    assert np.abs(degrade.jpeg_roundtrip(img, 85) - img).max() <= 2 / 255


def test_dead_leaves_is_deterministic_and_covered():
    a, b = dead_leaves(64, seed=7), dead_leaves(64, seed=7)
    assert np.array_equal(a, b) and a.shape == (3, 64, 64)
    assert not np.array_equal(a, dead_leaves(64, seed=8))
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.05
