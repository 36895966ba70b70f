"""DP kernel model: normalisation, left+right = combined, delta, sign swap, centroids, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.errors import InputError
from dpcli.optics import (
    combined_kernel,
    disk_kernel,
    dp_kernels,
    gaussian_kernel,
    kernel_centroid,
    load_measured_kernels,
    scale_kernels,
    translating_disk_kernels,
)
from dpcli.optics.kernels import _rdpd_combined_np, _ramp

RADII = torch.tensor([0.0, 0.4, 1.0, 2.5, 3.0, -3.0, 7.7, -12.2, 20.0])


class TestDpKernels:
    def test_shape_and_sum(self):
        left, right = dp_kernels(RADII)
        assert left.shape == right.shape == (9, 41, 41)
        torch.testing.assert_close(left.sum((-2, -1)), torch.ones(9), atol=1e-5, rtol=0)
        torch.testing.assert_close(right.sum((-2, -1)), torch.ones(9), atol=1e-5, rtol=0)
        assert (left >= 0).all() and (right >= 0).all()

    def test_explicit_size_pads(self):
        left, _ = dp_kernels(torch.tensor([2.0]), size=11)
        small, _ = dp_kernels(torch.tensor([2.0]))
        assert left.shape == (1, 11, 11) and small.shape == (1, 5, 5)
        torch.testing.assert_close(left[0, 3:8, 3:8], small[0])
        with pytest.raises(ValueError, match="too small"):
            dp_kernels(torch.tensor([6.0]), size=9)

    @pytest.mark.parametrize("order,cutoff,beta", [(3, 2.5, 0.1), (6, 2.0, 0.2)])
    @pytest.mark.parametrize("n", [1, 2, 5, 13])
    def test_unnormalised_left_plus_right_is_combined(self, n, order, cutoff, beta):
        comb = _rdpd_combined_np(n, order, cutoff, beta)
        ramp = _ramp(2 * n + 1)
        left_u, right_u = comb * ramp, comb * ramp[:, ::-1]
        np.testing.assert_allclose(left_u + right_u, comb, atol=1e-12)
        left, right = dp_kernels(torch.tensor([float(n)], dtype=torch.float64), order=order,
                                 cutoff=cutoff, beta=beta)
        ref = combined_kernel(torch.tensor([float(n)], dtype=torch.float64), order=order,
                              cutoff=cutoff, beta=beta)
        torch.testing.assert_close((left + right) / 2, ref, atol=1e-12, rtol=0)
        np.testing.assert_allclose(left[0].numpy(), left_u / left_u.sum(), atol=1e-12)

    def test_radius_zero_is_delta(self):
        left, right = dp_kernels(torch.tensor([0.0, 5.0]))
        delta = torch.zeros(11, 11)
        delta[5, 5] = 1
        assert torch.equal(left[0], delta) and torch.equal(right[0], delta)
        assert torch.equal(disk_kernel(torch.tensor([0.0]))[0], torch.ones(1, 1))
        assert torch.equal(gaussian_kernel(torch.tensor([0.0]))[0], torch.ones(1, 1))

    def test_sign_flip_swaps_exactly(self):
        r = torch.tensor([0.7, 3.0, 6.4, 11.5])
        lp, rp = dp_kernels(r)
        ln, rn = dp_kernels(-r)
        assert torch.equal(lp, rn) and torch.equal(rp, ln)
        # right is the horizontal mirror of left
        torch.testing.assert_close(rp, lp.flip(-1), atol=1e-7, rtol=0)
        tl, tr = translating_disk_kernels(-r)
        tl2, tr2 = translating_disk_kernels(r)
        assert torch.equal(tl, tr2) and torch.equal(tr, tl2)

    def test_left_mass_toward_plus_x_for_positive_radius(self):
        left, right = dp_kernels(torch.tensor([8.0, -8.0]))
        cl, cr = kernel_centroid(left), kernel_centroid(right)
        assert cl[0, 0] > 2 and cr[0, 0] < -2 and cl[1, 0] < -2
        assert abs(float(cl[0, 1])) < 1e-5  # no vertical offset

    def test_translating_disk_centroids_half_radius_apart(self):
        # uniform disk x ramp: centroid E[x^2]/r = r/4 each side, so |r|/2 apart
        for r in (6.0, 15.0, 30.0):
            left, right = translating_disk_kernels(torch.tensor([r], dtype=torch.float64))
            gap = float(kernel_centroid(left)[0, 0] - kernel_centroid(right)[0, 0])
            assert gap == pytest.approx(r / 2, rel=0.06)

    def test_fractional_radius_interpolates(self):
        r = torch.tensor([3.0, 3.25, 4.0], dtype=torch.float64)
        left, _ = dp_kernels(r)
        torch.testing.assert_close(left[1], 0.75 * left[0] + 0.25 * left[2], atol=1e-12, rtol=0)
        # the combined kernel's spread grows monotonically with |r|
        rs = torch.linspace(0, 10, 41, dtype=torch.float64)
        comb = combined_kernel(rs)
        ax = torch.arange(comb.shape[-1], dtype=torch.float64) - comb.shape[-1] // 2
        var = (comb * (ax[None, :] ** 2 + ax[:, None] ** 2)).sum((-2, -1))
        assert (var.diff() > 0).all()

    def test_gradcheck_radius(self):
        def f(r):
            left, right = dp_kernels(r, size=13)
            return left, right

        r = torch.tensor([2.3, -4.6, 5.5], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(f, (r,), eps=1e-6, atol=1e-6)
        r2 = torch.tensor([1.3, 3.7], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x: disk_kernel(x, size=11), (r2,), eps=1e-6, atol=1e-6)
        assert torch.autograd.gradcheck(lambda x: gaussian_kernel(x, size=11), (r2,), eps=1e-6,
                                        atol=1e-6)

    def test_bad_radius_shape(self):
        with pytest.raises(ValueError, match=r"\(B,\)"):
            dp_kernels(torch.zeros(2, 2))


class TestOtherKernels:
    def test_disk_and_gaussian_sum_to_one(self):
        d = disk_kernel(torch.tensor([0.5, 3.2, 9.0]))
        g = gaussian_kernel(torch.tensor([0.5, 2.0]))
        torch.testing.assert_close(d.sum((-2, -1)), torch.ones(3))
        torch.testing.assert_close(g.sum((-2, -1)), torch.ones(2))
        assert g.shape[-1] == 2 * 6 + 1

    def test_scale_kernels_sign_mirrors(self):
        left, _ = dp_kernels(torch.tensor([5.0]), size=31)
        up = scale_kernels(left, 2.0)
        down = scale_kernels(left, -2.0)
        torch.testing.assert_close(down, up.flip(-1), atol=1e-6, rtol=0)
        c1, c2 = kernel_centroid(left)[0, 0], kernel_centroid(up)[0, 0]
        assert float(c2 / c1) == pytest.approx(2.0, rel=0.05)
        assert torch.equal(scale_kernels(left, 0.0)[0].nonzero()[0], torch.tensor([15, 15]))


class TestMeasured:
    def test_load_and_recentre(self, tmp_path):
        left, right = dp_kernels(torch.tensor([6.0, 9.0]), size=25)
        # shift the pair by (+2, -1) px off centre, as the Pixel 4 calibration is
        shifted_l = torch.roll(left, shifts=(-1, 2), dims=(-2, -1))
        shifted_r = torch.roll(right, shifts=(-1, 2), dims=(-2, -1))
        np.save(tmp_path / "l.npy", shifted_l.numpy())
        np.save(tmp_path / "r.npy", shifted_r.numpy())
        ml, mr = load_measured_kernels(tmp_path / "l.npy", tmp_path / "r.npy")
        assert ml.shape == (2, 25, 25)
        c = kernel_centroid(ml + mr)
        assert c.abs().max() < 1e-4
        torch.testing.assert_close(ml, left, atol=1e-5, rtol=0)  # integer shift undone exactly
        gap = kernel_centroid(ml)[:, 0] - kernel_centroid(mr)[:, 0]
        torch.testing.assert_close(gap, kernel_centroid(left)[:, 0] - kernel_centroid(right)[:, 0])

    def test_errors(self, tmp_path):
        with pytest.raises(InputError, match="no such kernel file"):
            load_measured_kernels(tmp_path / "a.npy", tmp_path / "b.npy")
        np.save(tmp_path / "a.npy", np.ones((2, 3, 4), np.float32))
        np.save(tmp_path / "b.npy", np.ones((2, 3, 3), np.float32))
        with pytest.raises(InputError, match=r"shape \(P, k, k\)"):
            load_measured_kernels(tmp_path / "a.npy", tmp_path / "b.npy")

    def test_pixel4_calibration(self, pixel4_dir):
        cal = pixel4_dir / "calibration"
        left, right = load_measured_kernels(cal / "blur_kernels_left.npy",
                                            cal / "blur_kernels_right.npy")
        assert left.shape == (48, 61, 61)
        assert kernel_centroid(left + right).abs().max() < 0.05
        gap = (kernel_centroid(left)[:, 0] - kernel_centroid(right)[:, 0]).mean()
        assert float(gap) == pytest.approx(-5.3, abs=0.6)  # file "left" acts as our right view


class TestMeasuredKernelFn:
    def test_rescales_orients_and_mirrors(self):
        from dpcli.optics import MeasuredKernelFn, equivalent_radius

        left, right = dp_kernels(torch.tensor([8.0, 4.0]), size=25)
        torch.testing.assert_close(equivalent_radius((left + right) / 2), torch.tensor([8.0, 4.0]),
                                   atol=0.03, rtol=0)
        fn = MeasuredKernelFn(right[0], left[0])  # given in the wrong order
        assert fn.swapped and fn.ref_radius == pytest.approx(8.0, abs=0.03)
        out_l, out_r = fn(torch.tensor([8.0, 4.0, -4.0, 0.0]))
        torch.testing.assert_close(out_l.sum((-2, -1)), torch.ones(4))
        k = out_l.shape[-1]  # reach of 99.5 % of the mass: may be smaller than the input array
        c = (25 - k) // 2
        assert (out_l[0] - left[0, c : c + k, c : c + k]).abs().max() < 0.05 * left[0].max()
        gap = kernel_centroid(out_l)[:, 0] - kernel_centroid(out_r)[:, 0]
        assert gap[0] > 0 and gap[1] == pytest.approx(float(gap[0]) / 2, rel=0.1)
        torch.testing.assert_close(out_l[2], out_l[1].flip(-1), atol=1e-6, rtol=0)
        assert out_l[3].max() == 1.0  # radius 0: a delta
