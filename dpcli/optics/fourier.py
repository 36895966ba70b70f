"""Fourier-domain pieces of DP deconvolution, shared by ``dpcli.classical`` and ``dpcli.zeroshot``.

Small, batched, differentiable torch functions. Spectra use the ``rfft2`` layout: an (nh, nw)
grid gives (..., nh, nw // 2 + 1) complex arrays. Kernels are centred at ``(kh // 2, kw // 2)``
like everywhere in :mod:`dpcli.optics` (true convolution, as in :func:`dpcli.optics.blur`).

- :func:`kernel_otf`: the optical transfer function of centred kernels on a grid (FFT of the
  kernel moved so its centre sits at the origin): multiplying a spectrum by it is a circular
  convolution with the kernel;
- :func:`gradient_power`: ``|D_x|^2 + |D_y|^2`` of forward differences (the Tikhonov-gradient prior);
- :func:`wiener_joint`: the joint left/right regularised (Wiener/Tikhonov) least-squares solve;
- :func:`taper_pad`: reflect-padding to an FFT length with the margin faded to the image mean, so
  the periodic extension an FFT assumes is continuous (no wrap-around ringing in the image).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dpcli.optics.conv import fast_len, pad_image
from dpcli.optics.windows import taper_window

__all__ = ["kernel_otf", "gradient_power", "wiener_joint", "Padded", "taper_pad"]


def kernel_otf(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Optical transfer function of centred kernels on an (nh, nw) grid.

    Args:
        kernel: (..., kh, kw) real kernels, centre at (kh // 2, kw // 2); kh <= nh, kw <= nw.
        shape: (nh, nw) FFT grid.

    Returns:
        (..., nh, nw // 2 + 1) complex: ``irfft2(rfft2(x) * otf)`` is the circular convolution
        of (..., nh, nw) images with the kernel. Differentiable in ``kernel``.
    """
    kh, kw = kernel.shape[-2:]
    nh, nw = shape
    if kh > nh or kw > nw:
        raise ValueError(f"kernel {kh}x{kw} does not fit the FFT grid {nh}x{nw}")
    pad = F.pad(kernel, (0, nw - kw, 0, nh - kh))
    pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.rfft2(pad)


def gradient_power(shape: tuple[int, int], device=None, dtype=torch.float32) -> torch.Tensor:
    """``|D_x|^2 + |D_y|^2`` of forward differences on an (nh, nw) grid: (nh, nw // 2 + 1) real,
    ``4 sin^2(pi f_y) + 4 sin^2(pi f_x)`` (the power spectrum of the discrete gradient)."""
    nh, nw = shape
    fy = torch.fft.fftfreq(nh, device=device, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(nw, device=device, dtype=dtype)[None, :]
    return 4 * torch.sin(math.pi * fy) ** 2 + 4 * torch.sin(math.pi * fx) ** 2


def wiener_joint(fl: torch.Tensor, fr: torch.Tensor, kl: torch.Tensor, kr: torch.Tensor, lam: float,
                 prior: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Spectrum of the joint left/right regularised least-squares estimate

        argmin_X ||Y_L - K_L X||^2 + ||Y_R - K_R X||^2 + lam ||P (X - M)||^2
        = (conj(K_L) Y_L + conj(K_R) Y_R + lam |P|^2 M) / (|K_L|^2 + |K_R|^2 + lam |P|^2)

    Args:
        fl, fr: spectra of the views Y_L, Y_R (..., nh, nw') complex.
        kl, kr: OTFs of the left and right kernels (:func:`kernel_otf`), broadcastable to them.
        lam: prior weight.
        prior: |P|^2, e.g. :func:`gradient_power` (Tikhonov-gradient) or ``torch.ones(())``.
        mean: optional spectrum of the prior mean M (default 0), e.g. of the combined view.

    Returns:
        the broadcast (..., nh, nw') spectrum of X. Differentiable in every input.
    """
    num = kl.conj() * fl + kr.conj() * fr
    if mean is not None:
        num = num + lam * prior * mean
    den = kl.real**2 + kl.imag**2 + kr.real**2 + kr.imag**2 + lam * prior
    return num / den


@dataclass
class Padded:
    """Images padded for FFT work: ``data`` (..., nh, nw); the image sits at [top:top+h, left:left+w]."""

    data: torch.Tensor
    top: int
    left: int
    h: int
    w: int

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """(..., nh, nw) -> (..., h, w): the image region of a padded-grid map."""
        return x[..., self.top : self.top + self.h, self.left : self.left + self.w]


def taper_pad(image: torch.Tensor, margin: int, multiple: int = 1) -> Padded:
    """Reflect-pad (..., H, W) by ``margin``, fade the margin to the image mean with a raised
    cosine (0 at the outer edge), then pad with the mean to FFT-friendly lengths (a multiple of
    ``multiple`` when > 1). The periodic extension is then continuous, so circular convolution
    artefacts stay in the margin, which :meth:`Padded.crop` removes."""
    h, w = image.shape[-2:]
    m = int(margin)
    xp = pad_image(image, m, m, m, m, padding="reflect")
    mean = image.mean(dim=(-2, -1), keepdim=True)
    wy = taper_window(h + 2 * m, m, dtype=image.dtype, device=image.device)
    wx = taper_window(w + 2 * m, m, dtype=image.dtype, device=image.device)
    xp = mean + (xp - mean) * (wy[:, None] * wx[None, :])
    nh = fast_len(h + 2 * m)
    nw = fast_len(w + 2 * m)
    if multiple > 1:
        nh = fast_len(-(-nh // multiple) * multiple)
        nw = fast_len(-(-nw // multiple) * multiple)
    extra_h, extra_w = nh - (h + 2 * m), nw - (w + 2 * m)
    xp = F.pad(xp - mean, (0, extra_w, 0, extra_h)) + mean
    return Padded(xp, m, m, h, w)
