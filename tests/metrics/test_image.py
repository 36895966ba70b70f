"""PSNR / SSIM / MAE (dpcli/metrics/image.py): exact values on known errors, parity with scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpcli.metrics import aligned_psnr, fourier_shift, mae, psnr, ssim


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    gt = rng.random((3, 48, 64))
    return gt, np.clip(gt + 0.05 * rng.standard_normal(gt.shape), 0, 1)


class TestPSNR:
    def test_known_constant_error_is_exact(self):
        gt = np.full((1, 32, 32), 0.5)
        pred = gt + 0.01  # MSE = 1e-4 -> 40 dB exactly
        assert psnr(pred, gt) == pytest.approx(40.0, abs=1e-9)
        assert mae(pred, gt) == pytest.approx(0.01, abs=1e-12)

    def test_known_noise(self):
        rng = np.random.default_rng(1)
        gt = rng.random((1, 64, 64))
        noise = rng.choice([-0.02, 0.02], size=gt.shape)  # |e| = 0.02 everywhere -> MSE 4e-4
        assert psnr(gt + noise, gt) == pytest.approx(10 * math.log10(1 / 4e-4), abs=1e-9)

    def test_batch_is_mean_of_per_image(self, pair):
        gt, pred = pair
        b = np.stack([pred, gt * 0.9])
        g = np.stack([gt, gt])
        assert psnr(b, g) == pytest.approx((psnr(pred, gt) + psnr(gt * 0.9, gt)) / 2)

    def test_identical_is_inf(self):
        x = np.zeros((1, 8, 8))
        assert psnr(x, x) == math.inf

    def test_torch_and_numpy_agree(self, pair):
        gt, pred = pair
        assert psnr(torch.from_numpy(pred).float(), torch.from_numpy(gt).float()) == pytest.approx(
            psnr(pred.astype(np.float32), gt.astype(np.float32)), abs=1e-9)

    def test_mask_excludes_region(self):
        gt = np.zeros((1, 16, 16))
        pred = gt.copy()
        pred[:, :4, :4] = 1.0
        mask = np.ones((16, 16), bool)
        mask[:4, :4] = False
        assert mae(pred, gt, mask) == 0.0
        assert mae(pred, gt) == pytest.approx(16 / 256)

    def test_shape_mismatch_raises(self):
        with pytest.raises(ValueError, match="differ in shape"):
            psnr(np.zeros((1, 8, 8)), np.zeros((1, 8, 9)))


class TestSSIM:
    @pytest.mark.parametrize("shape", [(3, 48, 64), (1, 33, 40), (40, 31)])
    def test_matches_skimage(self, shape):
        sk = pytest.importorskip("skimage.metrics")
        rng = np.random.default_rng(2)
        gt = rng.random(shape)
        pred = np.clip(gt + 0.1 * rng.standard_normal(shape), 0, 1)
        if len(shape) == 3:
            ref = sk.structural_similarity(pred, gt, data_range=1, channel_axis=0)
        else:
            ref = sk.structural_similarity(pred, gt, data_range=1)
        assert ssim(pred, gt) == pytest.approx(ref, abs=1e-4)

    def test_matches_skimage_on_smooth_image(self):
        sk = pytest.importorskip("skimage.metrics")
        y, x = np.mgrid[0:64, 0:80] / 64.0
        gt = (0.5 + 0.4 * np.sin(6 * x) * np.cos(4 * y))[None]
        pred = gt * 0.9 + 0.03
        assert ssim(pred, gt) == pytest.approx(sk.structural_similarity(pred[0], gt[0], data_range=1), abs=1e-4)

    def test_identical_is_one_and_noise_lowers_it(self, pair):
        gt, pred = pair
        assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
        assert ssim(pred, gt) < 0.99 and ssim(np.clip(gt + 0.3, 0, 1), gt) < ssim(pred, gt)

    def test_too_small_raises(self):
        with pytest.raises(ValueError, match="smaller than the SSIM window"):
            ssim(np.zeros((1, 5, 5)), np.zeros((1, 5, 5)))


def test_fourier_shift_round_trip():
    torch.manual_seed(1)
    x = torch.rand(1, 47, 63, dtype=torch.float64)  # odd sizes: no Nyquist bin, so exactly invertible
    back = fourier_shift(fourier_shift(x, 0.3, -1.7), -0.3, 1.7)
    assert torch.allclose(back, x, atol=1e-10)
    assert torch.allclose(fourier_shift(x, 3, -2), torch.roll(x, (-2, 3), (-2, -1)), atol=1e-10)


def test_aligned_psnr_finds_a_subpixel_offset():
    torch.manual_seed(0)
    sharp = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 120, 150, dtype=torch.float64), 5, 1, 2)[0]
    moved = fourier_shift(sharp, 0.75, -0.5) + 0.002 * torch.randn_like(sharp)
    value, (dx, dy) = aligned_psnr(moved, sharp)
    assert (dx, dy) == (-0.75, 0.5)  # moving it back
    assert psnr(moved, sharp) < 35 and value > 50  # noise 0.002 -> about 54 dB once aligned
    same, shift = aligned_psnr(sharp, sharp + 0.01)
    assert shift == (0.0, 0.0) and same == pytest.approx(40.0, abs=1e-6)
