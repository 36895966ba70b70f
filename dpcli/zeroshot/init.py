"""Stage 1: latent-map initialisation (thesis 004, section 3.1, Eq. 2-4).

Each MPI layer X_i must explain both views through its own kernel pair:
``min_X ||y_L - X * f_i^L||^2 + ||y_R - X * f_i^R||^2 (+ lam ||grad X||^2)``. This is linear
least squares, solved exactly per layer in the Fourier domain (regularised joint L/R Wiener
deconvolution). The thesis' iterative solver (gradient descent on Eq. 4, regularised only by
stopping early) is kept as ``iterative_layers`` for comparison.

Boundaries: the views are reflect-padded by a margin and the margin is faded to the image mean
with a raised-cosine window, so the periodic extension the FFT assumes is continuous and
wrap-around ringing stays in the margin, which is cropped away.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from dpcli.optics import pad_image
from dpcli.optics.conv import fast_len as _fast_len
from dpcli.tiling import tent_weights


@dataclass
class Padded:
    """Views padded for FFT work: ``data`` (..., nh, nw); the image sits at [top:top+h, left:left+w]."""

    data: torch.Tensor
    top: int
    left: int
    h: int
    w: int

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top : self.top + self.h, self.left : self.left + self.w]


def taper_pad(image: torch.Tensor, margin: int, multiple: int = 1) -> Padded:
    """Reflect-pad (..., H, W) by ``margin``, fade the margin to the mean, pad to an FFT length."""
    h, w = image.shape[-2:]
    m = int(margin)
    xp = pad_image(image, m, m, m, m, padding="reflect")
    mean = image.mean(dim=(-2, -1), keepdim=True)
    wy = _fade(h, m, image)
    wx = _fade(w, m, image)
    xp = mean + (xp - mean) * (wy[:, None] * wx[None, :])
    nh = _fast_len(h + 2 * m)
    nw = _fast_len(w + 2 * m)
    if multiple > 1:
        nh = _fast_len(-(-nh // multiple) * multiple)
        nw = _fast_len(-(-nw // multiple) * multiple)
    extra_h, extra_w = nh - (h + 2 * m), nw - (w + 2 * m)
    xp = torch.nn.functional.pad(xp - mean, (0, extra_w, 0, extra_h)) + mean
    return Padded(xp, m, m, h, w)


def _fade(n: int, m: int, like: torch.Tensor) -> torch.Tensor:
    """1 over the image, raised cosine from 1 to 0 across each margin: (n + 2m,)."""
    w = torch.ones(n + 2 * m, dtype=like.dtype, device=like.device)
    if m > 0:
        t = torch.arange(0, m, dtype=like.dtype, device=like.device) / m
        ramp = 0.5 - 0.5 * torch.cos(math.pi * t)  # exactly 0 at the outer edge -> 1 at the image
        w[:m] = ramp
        w[n + m :] = ramp.flip(0)
    return w


def kernel_otf(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Optical transfer function of centred kernels (..., K, K) on an (nh, nw) grid (rfft2 layout)."""
    k = kernel.shape[-1]
    pad = torch.zeros(*kernel.shape[:-2], *shape, dtype=kernel.dtype, device=kernel.device)
    pad[..., :k, :k] = kernel
    pad = torch.roll(pad, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1))
    return torch.fft.rfft2(pad)


def gradient_power(shape: tuple[int, int], device=None, dtype=torch.float32) -> torch.Tensor:
    """|D_x|^2 + |D_y|^2 of forward differences on an (nh, nw) grid (rfft2 layout)."""
    nh, nw = shape
    fy = torch.fft.fftfreq(nh, device=device, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(nw, device=device, dtype=dtype)[None, :]
    return 4 * torch.sin(math.pi * fy) ** 2 + 4 * torch.sin(math.pi * fx) ** 2


def wiener_joint(fl: torch.Tensor, fr: torch.Tensor, kl: torch.Tensor, kr: torch.Tensor,
                 lam: float, g2: torch.Tensor) -> torch.Tensor:
    """Spectrum of argmin_X ||Y_L - K_L X||^2 + ||Y_R - K_R X||^2 + lam ||grad X||^2 (broadcasts)."""
    num = kl.conj() * fl + kr.conj() * fr
    den = kl.real**2 + kl.imag**2 + kr.real**2 + kr.imag**2 + lam * g2
    return num / den


@dataclass
class LatentInit:
    """Stage-1 result: latent layers X_i and their reblurred views, each (L, C, H, W)."""

    latent: torch.Tensor
    blur_left: torch.Tensor
    blur_right: torch.Tensor
    seconds: float


def closed_form_layers(left: torch.Tensor, right: torch.Tensor, kernels: torch.Tensor, lam: float,
                       store_dtype: torch.dtype = torch.float32) -> LatentInit:
    """Exact per-layer LS (Eq. 4 + Tikhonov gradient prior) by joint L/R Wiener deconvolution.

    Args:
        left, right: (C, H, W) linear views.
        kernels: (L, 2, K, K) [left, right] kernel of every layer (uniform over the image).
        lam: weight of ||grad X||^2.
        store_dtype: dtype of the returned maps (bf16 halves memory for big colour scenes).

    Returns:
        :class:`LatentInit` with latent X (L, C, H, W) and X * f^L, X * f^R.
    """
    start = time.perf_counter()
    k = kernels.shape[-1]
    margin = 2 * k
    pl, pr = taper_pad(left, margin), taper_pad(right, margin)
    shape = tuple(pl.data.shape[-2:])
    fl, fr = torch.fft.rfft2(pl.data), torch.fft.rfft2(pr.data)
    g2 = gradient_power(shape, left.device, left.dtype)
    n_layers = kernels.shape[0]
    c, h, w = left.shape
    latent = torch.empty(n_layers, c, h, w, dtype=store_dtype, device=left.device)
    bl, br = torch.empty_like(latent), torch.empty_like(latent)
    for i in range(n_layers):
        kl = kernel_otf(kernels[i, 0], shape)
        kr = kernel_otf(kernels[i, 1], shape)
        fx = wiener_joint(fl, fr, kl, kr, lam, g2)
        latent[i] = pl.crop(torch.fft.irfft2(fx, s=shape)).to(store_dtype)
        bl[i] = pl.crop(torch.fft.irfft2(fx * kl, s=shape)).to(store_dtype)
        br[i] = pl.crop(torch.fft.irfft2(fx * kr, s=shape)).to(store_dtype)
    return LatentInit(latent, bl, br, time.perf_counter() - start)


def closed_form_layers_patched(left: torch.Tensor, right: torch.Tensor, kernels: torch.Tensor,
                               grid: tuple[int, int], lam: float, store_dtype: torch.dtype = torch.float32,
                               roi: tuple[int, int, int, int] | None = None) -> LatentInit:
    """:func:`closed_form_layers` with one kernel set per patch of a ``grid`` (measured kernels vary
    over the field): every patch is solved on the support of its bilinear tent (two patches
    wide) plus one kernel width of image context, and the solutions are blended by the tents, so
    kernels change smoothly between patch centres and the result has no seams.

    Args:
        kernels: (P, L, 2, K, K) with P = rows * cols, row-major.
        grid: (rows, cols) of patches covering ``roi`` (row0, row1, col0, col1; default the
            whole image) evenly; pixels outside it take the nearest patch's kernels.

    Returns:
        :class:`LatentInit`, full frame, as :func:`closed_form_layers`.
    """
    start = time.perf_counter()
    rows, cols = grid
    c, h, w = left.shape
    n_layers, k = kernels.shape[1], kernels.shape[-1]
    r0, r1, c0, c1 = roi or (0, h, 0, w)
    ph, pw = (r1 - r0) / rows, (c1 - c0) / cols
    wy = tent_weights(h, [r0 + i * ph for i in range(rows)], ph).to(left.dtype)
    wx = tent_weights(w, [c0 + j * pw for j in range(cols)], pw).to(left.dtype)
    maps = [torch.zeros(n_layers, c, h, w, dtype=left.dtype, device=left.device) for _ in range(3)]
    for i in range(rows):
        ys = torch.nonzero(wy[i] > 0).flatten()
        y0, y1 = max(0, int(ys[0]) - k), min(h, int(ys[-1]) + 1 + k)
        for j in range(cols):
            xs = torch.nonzero(wx[j] > 0).flatten()
            x0, x1 = max(0, int(xs[0]) - k), min(w, int(xs[-1]) + 1 + k)
            part = closed_form_layers(left[:, y0:y1, x0:x1], right[:, y0:y1, x0:x1], kernels[i * cols + j], lam)
            weight = (wy[i, y0:y1, None] * wx[j, None, x0:x1]).to(left.device)
            for full, tile in zip(maps, (part.latent, part.blur_left, part.blur_right)):
                full[..., y0:y1, x0:x1] += tile * weight
    latent, bl, br = (m.to(store_dtype) for m in maps)
    return LatentInit(latent, bl, br, time.perf_counter() - start)


def iterative_layers(left: torch.Tensor, right: torch.Tensor, kernels: torch.Tensor, iters: int,
                     lr: float = 0.01, deadline: float | None = None,
                     store_dtype: torch.dtype = torch.float32) -> LatentInit:
    """The thesis' stage 1: Adam on Eq. 4 for every layer at once, started from the combined view,
    regularised only by the finite iteration count. Convolutions are FFT products on the
    taper-padded grid; the loss counts the image region only. Same shapes as the closed form.
    """
    start = time.perf_counter()
    k = kernels.shape[-1]
    pl, pr = taper_pad(left, 2 * k), taper_pad(right, 2 * k)
    shape = tuple(pl.data.shape[-2:])
    kl = kernel_otf(kernels[:, 0], shape)[:, None]  # (L, 1, nh, nw')
    kr = kernel_otf(kernels[:, 1], shape)[:, None]
    n_layers = kernels.shape[0]
    x = ((pl.data + pr.data) / 2).unsqueeze(0).repeat(n_layers, 1, 1, 1).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr * float(left.mean().clamp_min(1e-3)))
    yl, yr = pl.crop(pl.data), pr.crop(pr.data)
    for _ in range(int(iters)):
        fx = torch.fft.rfft2(x)
        el = pl.crop(torch.fft.irfft2(fx * kl, s=shape)) - yl
        er = pr.crop(torch.fft.irfft2(fx * kr, s=shape)) - yr
        loss = (el.square().mean() + er.square().mean()) * n_layers
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if deadline is not None and time.perf_counter() > deadline:
            break
    with torch.no_grad():
        fx = torch.fft.rfft2(x)
        latent = pl.crop(x).to(store_dtype)
        bl = pl.crop(torch.fft.irfft2(fx * kl, s=shape)).to(store_dtype)
        br = pl.crop(torch.fft.irfft2(fx * kr, s=shape)).to(store_dtype)
    return LatentInit(latent.detach(), bl, br, time.perf_counter() - start)
