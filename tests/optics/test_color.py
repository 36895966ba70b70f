"""sRGB curve: round trip, known values, monotone, gradients finite at 0."""
from __future__ import annotations

import pytest
import torch

from dpcli.optics import linear_to_srgb, srgb_to_linear


def test_round_trip_and_values():
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12, rtol=0)
    assert float(srgb_to_linear(torch.tensor(0.5))) == pytest.approx(0.21404, abs=1e-4)
    assert float(linear_to_srgb(torch.tensor(0.18))) == pytest.approx(0.46135, abs=1e-4)
    assert (srgb_to_linear(x).diff() > 0).all()


def test_gradient_finite_at_zero():
    x = torch.tensor([0.0, 0.002, 0.5], requires_grad=True)
    linear_to_srgb(x).sum().backward()
    assert torch.isfinite(x.grad).all()
