"""dpcli.zeroshot.kernels: layer radii, per-layer kernels, the stages' kernel setup."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.errors import InputError
from dpcli.optics import dp_kernels
from dpcli.zeroshot import make_config
from dpcli.zeroshot.kernels import (downsize, layer_kernels, layer_radii, measured_layer_kernels, measured_radius,
                                    nearest_patch, parametric_max_kernels, prepare_kernels)


class TestKernels:
    def test_radii_front_back_both(self):
        assert layer_radii(4, 3.0, "front").tolist() == [0, 1, 2, 3]
        assert layer_radii(4, 3.0, "back").tolist() == [-3, -2, -1, 0]
        assert layer_radii(4, 3.0, "both").tolist() == [-3, -2, -1, 0, 1, 2, 3]

    def test_downsized_layers(self):
        kmax = parametric_max_kernels(5.0)
        ks = layer_kernels(kmax, layer_radii(6, 5.0, "both"))  # (11, 2, 11, 11)
        assert ks.shape == (11, 2, 11, 11)
        assert torch.allclose(ks.sum((-2, -1)), torch.ones(11, 2), atol=1e-5)
        zero = ks[5, 0]
        assert float(zero[5, 5]) == pytest.approx(1.0)  # radius 0: a delta
        # layer 2 only occupies the central 5 x 5 (zero-padded)
        assert float(ks[7, 0].sum()) == pytest.approx(float(ks[7, 0, 3:8, 3:8].sum()), abs=1e-6)
        # back layers are the mirror image: left kernel mass toward -x
        xs = torch.arange(11) - 5.0
        assert float((ks[0, 0].sum(0) * xs).sum()) < 0 < float((ks[10, 0].sum(0) * xs).sum())

    def test_measured_kernels_are_stretched_to_every_layer(self):
        kl, kr = dp_kernels(torch.tensor([6.0, 6.0]), size=21)  # two "calibration" patches
        r_cal = float(measured_radius(kl, kr)[0])
        radii = torch.tensor([-r_cal, 0.0, r_cal / 2, r_cal])
        layers = measured_layer_kernels(kl, kr, radii, size=25)
        assert layers.shape == (2, 4, 2, 25, 25)
        assert torch.allclose(layers.sum((-2, -1)), torch.ones(2, 4, 2), atol=1e-5)
        pad = lambda k: torch.nn.functional.pad(k, (2, 2, 2, 2))  # noqa: E731
        assert float((layers[0, 3, 0] - pad(kl[0])).abs().max()) < 0.02 * float(kl[0].max())  # factor 1: itself
        assert float(layers[0, 1, 0, 12, 12]) > 0.99  # radius 0: a delta
        assert torch.allclose(layers[0, 0], layers[0, 3].flip(-1), atol=1e-5)  # back focus: mirrored
        half = measured_radius(layers[0, 2, 0:1], layers[0, 2, 1:2])
        assert abs(float(half) - r_cal / 2) < 0.1 * r_cal  # the L/R gap scales with the radius

    def test_downsize_is_differentiable(self):
        k = parametric_max_kernels(4.0)["f"].clone().requires_grad_(True)
        downsize(k, 2.0).square().sum().backward()
        assert k.grad is not None and float(k.grad.abs().sum()) > 0

    def test_prepare_kernels_parametric_and_measured(self):
        cfg = make_config("fast", layers=4, max_radius=3.0, grid=(1, 2))
        setup = prepare_kernels(cfg, 64, 128)
        assert setup.radii.tolist() == [0, 1, 2, 3] and setup.sides == ["f"]
        assert setup.start["f"].shape == (1, 2, 7, 7) and setup.measured is None
        kl, kr = dp_kernels(torch.tensor([5.0, 5.0]), size=15)
        cal = prepare_kernels(cfg, 64, 128, (kl.numpy(), kr.numpy()))
        assert cal.start["f"].shape == (2, 2, 7, 7) and cal.roi == (0, 64, 0, 128)
        assert torch.allclose(cal.uniform["f"], cal.start["f"].mean(0))
        with pytest.raises(InputError, match="do not match the 1x2 patch grid"):
            prepare_kernels(cfg, 64, 128, (np.concatenate([kl, kl]), np.concatenate([kr, kr])))

    def test_nearest_patch(self):
        assert nearest_patch(64, 128, (1, 2), (0, 64, 0, 128)).tolist() == [0, 1]
        assert nearest_patch(64, 128, (1, 2), (0, 64, 0, 64)).tolist() == [1, 1]
        pixel4 = nearest_patch(1512, 2016, (6, 8), (252, 1260, 336, 1680))
        assert pixel4[0] == 0 and pixel4[-1] == 47 and len(set(pixel4.tolist())) < 48
