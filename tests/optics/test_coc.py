"""Thin-lens CoC: sign, zero at focus, known value, inverse."""
from __future__ import annotations

import pytest
import torch

from dpcli.optics import coc_radius, depth_for_radius


def test_sign_zero_and_value():
    d = torch.tensor([1.0, 2.0, 4.0, float("inf")])
    r = coc_radius(d, focal_length_mm=50, f_number=2.0, focus_distance_m=2.0, pixel_pitch_um=5.36)
    assert r[1] == 0 and r[0] < 0 and r[2] > 0
    # infinity: A f / (s - f) / 2 / pitch = 25mm * 50mm / 1950mm / 2 / 5.36um = 59.8 px
    assert float(r[3]) == pytest.approx(25e-3 * 50e-3 / 1.95 / 2 / 5.36e-6, rel=1e-5)
    assert float(r[2]) == pytest.approx(float(r[3]) / 2, rel=1e-5)  # linear in 1/depth


def test_inverse_and_errors():
    d = torch.tensor([0.5, 1.5, 3.0, 20.0])
    torch.testing.assert_close(depth_for_radius(coc_radius(d)), d, rtol=1e-5, atol=0)
    assert torch.isinf(depth_for_radius(torch.tensor([1e4])))
    with pytest.raises(ValueError, match="focus distance"):
        coc_radius(d, focal_length_mm=50, focus_distance_m=0.04)
