"""Classical DP defocus map (002 Eq. 5-6): dpcli/classical/defocus.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.classical import estimate_defocus_classical
from dpcli.metrics import defocus_metrics
from tests.classical.dp_scenes import dp_render, texture


class TestDefocusEstimate:
    def test_constant_radius_recovered(self):
        sharp = texture(80, 96)
        for true_r in (-3.0, 5.0):
            left, right = dp_render(sharp, torch.full((1, 80, 96), true_r))
            radius, conf = estimate_defocus_classical(left, right, min_radius=-8, max_radius=8, downscale=1)
            inner = radius[16:-16, 16:-16]
            assert float(inner.median()) == pytest.approx(true_r, abs=0.5), true_r
            assert float(conf.mean()) > 0.3

    def test_swapped_views_flip_the_sign(self):
        sharp = texture(64, 64, seed=2)
        left, right = dp_render(sharp, torch.full((1, 64, 64), 3.0))
        r1, _ = estimate_defocus_classical(left.numpy(), right.numpy(), downscale=1)
        r2, _ = estimate_defocus_classical(right.numpy(), left.numpy(), downscale=1)
        assert isinstance(r1, np.ndarray) and r1.dtype == np.float32
        assert np.median(r1) > 2 and np.median(r2) < -2

    def test_two_depths_and_confidence(self):
        sharp = texture(96, 128, seed=3)
        truth = torch.full((1, 96, 128), 1.0)
        truth[:, :, 64:] = 6.0
        left, right = dp_render(sharp, truth)
        radius, conf = estimate_defocus_classical(left, right, min_radius=-8, max_radius=8)
        m = defocus_metrics(radius, truth[0], absolute=True)
        assert m["spearman"] > 0.8 and m["mae_px"] < 1.0, m
        flat = torch.full((1, 64, 64), 0.5)  # no texture: nothing to tell
        _, conf_flat = estimate_defocus_classical(flat, flat)
        assert float(conf_flat.max()) < 0.05

    def test_synthetic_scene_correlates_with_truth(self):
        synth = pytest.importorskip("dpcli.synth.scene")
        scene = synth.make_test_scene((160, 192), seed=0, max_radius=6.0, focus_mode="front", output="linear")
        radius, _ = estimate_defocus_classical(scene.left, scene.right, min_radius=-8, max_radius=8)
        m = defocus_metrics(radius, scene.defocus[0], absolute=True)
        assert m["spearman"] >= 0.8, m
        assert m["mae_px"] < 1.0, m

    def test_srgb_inputs_are_linearised(self):
        from dpcli.optics import linear_to_srgb

        sharp = texture(64, 80, seed=4)
        left, right = dp_render(sharp, torch.full((1, 64, 80), 4.0))
        r_lin, _ = estimate_defocus_classical(left, right, downscale=1)
        r_srgb, _ = estimate_defocus_classical(linear_to_srgb(left), linear_to_srgb(right), srgb=True, downscale=1)
        assert float((r_lin - r_srgb).abs().median()) < 0.2


@pytest.mark.realdata
def test_pixel4_defocus_map_correlates_with_gt(pixel4_dir):
    from dpcli.metrics.protocols import load_pixel4_scene

    scene = load_pixel4_scene(pixel4_dir, "009")  # swap_lr=True: our orientation, positive radii
    radius, _ = estimate_defocus_classical(scene.left, scene.right)
    crop = scene.crop_view(radius)
    assert np.median(crop) > 3  # front-focus scene: everything behind the focal plane
    assert defocus_metrics(crop, scene.gt_defocus, scene.valid)["spearman"] > 0.8
