"""Direct and FFT convolution agree, are true convolutions, broadcast and differentiate."""
from __future__ import annotations

import pytest
import torch

from dpcli.optics import PADDING_MODES, blur, choose_method, dp_kernels, pad_image


@pytest.mark.parametrize("padding", PADDING_MODES)
@pytest.mark.parametrize("kshape", [(1, 1, 5, 5), (2, 3, 7, 4), (2, 1, 21, 21), (1, 3, 2, 9)])
def test_fft_equals_direct(padding, kshape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 37, 50, generator=g)
    k = torch.rand(kshape, generator=g)
    k = k / k.sum((-2, -1), keepdim=True)
    a = blur(x, k, method="direct", padding=padding)
    b = blur(x, k, method="fft", padding=padding)
    assert a.shape == x.shape
    assert (a - b).abs().max() < 1e-5


def test_true_convolution_shifts_toward_kernel_mass():
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1
    k = torch.zeros(1, 1, 5, 5)
    k[0, 0, 2, 4] = 1  # mass at +2 px in x
    for method in ("direct", "fft"):
        y = blur(x, k, method=method, padding="zeros")
        assert y[0, 0, 7, 9] == pytest.approx(1.0, abs=1e-6)
    # a point source reproduces the kernel itself (not its mirror)
    left, _ = dp_kernels(torch.tensor([3.0]))
    y = blur(x, left[:, None], method="direct", padding="zeros")
    torch.testing.assert_close(y[0, 0, 4:11, 4:11], left[0])


def test_large_kernel_on_tiny_image_reflect():
    x = torch.rand(1, 2, 4, 6)
    k = torch.ones(1, 1, 31, 31) / 31**2
    a = blur(x, k, method="direct")
    b = blur(x, k, method="fft")
    assert (a - b).abs().max() < 1e-5
    p = pad_image(torch.arange(4.0).view(1, 4), 0, 0, 5, 5)
    # numpy-style reflect (edge not repeated), folded again when the pad exceeds the size
    assert p[0].tolist() == [1.0, 2.0, 3.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0, 1.0, 2.0]


def test_constant_image_preserved():
    x = torch.full((1, 3, 20, 30), 0.3)
    l, _ = dp_kernels(torch.tensor([6.5]))
    for padding in ("reflect", "replicate", "circular"):
        y = blur(x, l[:, None], padding=padding)
        assert (y - 0.3).abs().max() < 1e-6


def test_auto_picks_fft_for_large_kernels():
    assert choose_method((1, 3, 512, 512), (1, 1, 3, 3)) == "direct"
    assert choose_method((1, 3, 512, 512), (1, 1, 61, 61)) == "fft"


def test_gradients_both_paths():
    x = torch.rand(1, 2, 7, 8, dtype=torch.float64, requires_grad=True)
    k = torch.rand(1, 1, 4, 3, dtype=torch.float64, requires_grad=True)
    for method in ("direct", "fft"):
        assert torch.autograd.gradcheck(lambda a, b: blur(a, b, method=method), (x, k), fast_mode=True)


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding must be one of"):
        blur(torch.rand(1, 1, 8, 8), torch.ones(1, 1, 3, 3), padding="mirror")
    with pytest.raises(ValueError, match="does not broadcast"):
        blur(torch.rand(2, 3, 8, 8), torch.ones(3, 1, 3, 3))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        blur(torch.rand(3, 8, 8), torch.ones(1, 1, 3, 3))
