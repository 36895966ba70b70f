"""Defocus-map metrics (dpcli/metrics/defocus.py): affine invariance, masks, exact values on known errors."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.metrics import aiwe1, aiwe2, defocus_metrics, spearman


class TestDefocusMetrics:
    def test_affine_invariance(self):
        rng = np.random.default_rng(3)
        gt = rng.random((40, 50)) * 10
        pred = 0.3 * gt - 2.0  # an affine copy: perfect under affine-invariant measures
        assert spearman(pred, gt) == pytest.approx(1.0)
        assert aiwe2(pred, gt) == pytest.approx(0.0, abs=1e-9)
        assert aiwe1(pred, gt) == pytest.approx(0.0, abs=1e-6)

    def test_valid_mask_and_noise(self):
        rng = np.random.default_rng(4)
        gt = rng.random((40, 50)) * 10
        pred = gt + rng.normal(0, 1.0, gt.shape)
        valid = np.ones_like(gt, bool)
        valid[:, :10] = False
        pred[:, :10] = -100  # outliers on invalid pixels must not count
        m = defocus_metrics(pred, gt, valid, absolute=True)
        assert 0.9 < m["spearman"] < 0.99
        assert m["mae_px"] == pytest.approx(np.sqrt(2 / np.pi), rel=0.1)  # E|N(0,1)|
        assert m["aiwe2"] == pytest.approx(1.0, rel=0.1)

    def test_anticorrelated(self):
        gt = np.arange(100.0).reshape(10, 10)
        assert spearman(-gt, gt) == pytest.approx(-1.0)
