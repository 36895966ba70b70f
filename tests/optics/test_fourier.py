"""dpcli.optics.fourier against the direct definitions: circular convolution, the gradient's
spectrum, the normal equations of the joint Wiener solve, the taper padding."""
from __future__ import annotations

import pytest
import torch

from dpcli.optics import dp_kernels
from dpcli.optics.conv import blur_direct, fast_len
from dpcli.optics.fourier import gradient_power, kernel_otf, taper_pad, wiener_joint


def _circ(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Circular true convolution of (..., H, W) with a (kh, kw) kernel centred at (kh//2, kw//2)."""
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, *x.shape[-2:]).double()
    return blur_direct(flat, k.double()[None, None], padding="circular").reshape(*lead, *x.shape[-2:])


@pytest.mark.parametrize("kh, kw", [(7, 7), (5, 9), (4, 6), (1, 1)])
def test_otf_product_is_circular_convolution(kh, kw):
    g = torch.Generator().manual_seed(kh * 10 + kw)
    x = torch.rand(2, 3, 24, 30, generator=g, dtype=torch.float64)
    k = torch.rand(kh, kw, generator=g, dtype=torch.float64)
    via_fft = torch.fft.irfft2(torch.fft.rfft2(x) * kernel_otf(k, (24, 30)), s=(24, 30))
    torch.testing.assert_close(via_fft, _circ(x, k))


def test_otf_is_batched_and_differentiable():
    kl, kr = dp_kernels(torch.tensor([2.0, 3.5]), size=9)
    otf = kernel_otf(torch.stack([kl, kr], 1), (32, 40))  # (2, 2, 9, 9) -> (2, 2, 32, 21)
    assert otf.shape == (2, 2, 32, 21) and otf.dtype == torch.complex64
    torch.testing.assert_close(otf[..., 0, 0].real, torch.ones(2, 2))  # kernels sum to 1: DC gain 1
    k = kl[0].clone().requires_grad_(True)
    kernel_otf(k, (16, 16)).abs().square().sum().backward()
    assert k.grad is not None and float(k.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="does not fit"):
        kernel_otf(torch.ones(9, 9), (8, 16))


def test_gradient_power_is_the_spectrum_of_forward_differences():
    shape = (12, 17)
    dx = torch.zeros(shape, dtype=torch.float64)
    dx[0, 0], dx[0, -1] = -1, 1  # (D_x x)[i, j] = x[i, j + 1] - x[i, j] as a circular correlation
    dy = torch.zeros(shape, dtype=torch.float64)
    dy[0, 0], dy[-1, 0] = -1, 1
    direct = torch.fft.rfft2(dx).abs() ** 2 + torch.fft.rfft2(dy).abs() ** 2
    torch.testing.assert_close(gradient_power(shape, dtype=torch.float64), direct)
    # Parseval: sum |grad x|^2 over the circular grid = the prior's quadratic form
    x = torch.rand(shape, dtype=torch.float64)
    energy = ((x.roll(-1, 1) - x) ** 2).sum() + ((x.roll(-1, 0) - x) ** 2).sum()
    spec = torch.fft.fft2(x)
    full = 4 * torch.sin(torch.pi * torch.fft.fftfreq(12, dtype=torch.float64))[:, None] ** 2 + \
        4 * torch.sin(torch.pi * torch.fft.fftfreq(17, dtype=torch.float64))[None, :] ** 2
    torch.testing.assert_close(energy, (spec.abs() ** 2 * full).sum() / x.numel())


@pytest.mark.parametrize("with_mean", [False, True])
def test_wiener_solution_satisfies_its_normal_equations(with_mean):
    """The joint estimate zeroes the gradient of ||k_L * X - y_L||^2 + ||k_R * X - y_R||^2
    + lam ||grad (X - M)||^2 (circular convolutions), computed by autograd in the image domain."""
    g = torch.Generator().manual_seed(3)
    shape = (20, 26)
    yl, yr = (torch.rand(2, *shape, generator=g, dtype=torch.float64) for _ in range(2))
    kl, kr = (torch.rand(5, 5, generator=g, dtype=torch.float64) for _ in range(2))
    mean = (yl + yr) / 2 if with_mean else torch.zeros_like(yl)
    lam = 0.05
    spec = wiener_joint(torch.fft.rfft2(yl), torch.fft.rfft2(yr), kernel_otf(kl, shape), kernel_otf(kr, shape), lam,
                        gradient_power(shape, dtype=torch.float64), torch.fft.rfft2(mean) if with_mean else None)
    x = torch.fft.irfft2(spec, s=shape).requires_grad_(True)

    def objective(z: torch.Tensor) -> torch.Tensor:
        d = z - mean
        grad = ((d.roll(-1, -1) - d) ** 2).sum() + ((d.roll(-1, -2) - d) ** 2).sum()
        return ((_circ(z, kl) - yl) ** 2).sum() + ((_circ(z, kr) - yr) ** 2).sum() + lam * grad

    objective(x).backward()
    zero = torch.zeros_like(yl, requires_grad=True)
    objective(zero).backward()
    assert float(x.grad.abs().max()) < 1e-9 * float(zero.grad.abs().max())


def test_wiener_identity_prior_and_broadcast():
    spec = torch.fft.rfft2(torch.rand(3, 1, 16, 16))
    otf = kernel_otf(torch.stack([torch.ones(3, 3) / 9] * 3), (16, 16))[:, None]  # (3, 1, 16, 9)
    out = wiener_joint(spec, spec, otf, otf, 0.1, torch.ones(()))
    assert out.shape == (3, 1, 16, 9)
    torch.testing.assert_close(out[..., 0, 0], spec[..., 0, 0] * 2 / 2.1)  # DC: 2Y / (2 + lam)


def test_taper_pad_is_continuous_and_fft_sized():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 37, 45, generator=g)
    p = taper_pad(img, 10)
    assert p.data.shape[-2:] == (fast_len(57), fast_len(65))
    torch.testing.assert_close(p.crop(p.data), img)
    # faded to the mean at the outer edge and beyond: the periodic extension has no step
    assert float((p.data[..., 0, :] - p.data[..., -1, :]).abs().max()) < 1e-5
    assert float((p.data[..., :, 0] - p.data[..., :, -1]).abs().max()) < 1e-5
    assert taper_pad(img, 10, multiple=8).data.shape[-2] % 8 == 0
