"""Stage 1: latent-map initialisation (thesis 004, section 3.1, Eq. 2-4).

Each MPI layer X_i must explain both views through its own kernel pair:
``min_X ||y_L - X * f_i^L||^2 + ||y_R - X * f_i^R||^2 (+ lam ||grad X||^2)``. This is linear
least squares, solved exactly per layer in the Fourier domain (regularised joint L/R Wiener
deconvolution). The thesis' iterative solver (gradient descent on Eq. 4, regularised only by
stopping early) is kept as ``iterative_layers`` for comparison.

Boundaries: the views are reflect-padded by a margin and the margin is faded to the image mean
with a raised-cosine window (:func:`dpcli.optics.fourier.taper_pad`), so the periodic extension
the FFT assumes is continuous and wrap-around ringing stays in the margin, which is cropped away.
The Fourier pieces (kernel OTF, gradient power, joint Wiener solve) live in :mod:`dpcli.optics.fourier`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from dpcli.optics.conv import fast_len
from dpcli.optics.fourier import Padded, gradient_power, kernel_otf, taper_pad, wiener_joint  # noqa: F401
from dpcli.optics.windows import tent_weights
from dpcli.zeroshot.loop import past


@dataclass
class LayerStack:
    """Stage-1 result: latent layers X_i and their reblurred views X_i * f_i^L, X_i * f_i^R, each
    (L, C, H, W) (dtype: the store dtype, bf16 or float32), the layers' signed radii (L,) in px
    (set by :func:`dpcli.zeroshot.layers.solve_layers`; None from the bare solvers) and the
    seconds the solve took."""

    latent: torch.Tensor
    blur_left: torch.Tensor
    blur_right: torch.Tensor
    seconds: float
    radii: torch.Tensor | None = None
    iters: int = 0  # steps of the iterative solver (0: closed form)


LatentInit = LayerStack  # the name before the stage modules


def closed_form_layers(left: torch.Tensor, right: torch.Tensor, kernels: torch.Tensor, lam: float,
                       store_dtype: torch.dtype = torch.float32) -> LayerStack:
    """Exact per-layer LS (Eq. 4 + Tikhonov gradient prior) by joint L/R Wiener deconvolution.

    Args:
        left, right: (C, H, W) linear views.
        kernels: (L, 2, K, K) [left, right] kernel of every layer (uniform over the image).
        lam: weight of ||grad X||^2.
        store_dtype: dtype of the returned maps (bf16 halves memory for big colour scenes).

    Returns:
        :class:`LayerStack` with latent X (L, C, H, W) and X * f^L, X * f^R.
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
    return LayerStack(latent, bl, br, time.perf_counter() - start)


def closed_form_layers_patched(left: torch.Tensor, right: torch.Tensor, kernels: torch.Tensor,
                               grid: tuple[int, int], lam: float, store_dtype: torch.dtype = torch.float32,
                               roi: tuple[int, int, int, int] | None = None) -> LayerStack:
    """:func:`closed_form_layers` with one kernel set per patch of a ``grid`` (measured kernels vary
    over the field): every patch is solved on the support of its bilinear tent (two patches
    wide) plus one kernel width of image context, and the solutions are blended by the tents, so
    kernels change smoothly between patch centres and the result has no seams.

    Args:
        kernels: (P, L, 2, K, K) with P = rows * cols, row-major.
        grid: (rows, cols) of patches covering ``roi`` (row0, row1, col0, col1; default the
            whole image) evenly; pixels outside it take the nearest patch's kernels.

    Returns:
        :class:`LayerStack`, full frame, as :func:`closed_form_layers`.
    """
    start = time.perf_counter()
    c, h, w = left.shape
    n_layers, k = kernels.shape[1], kernels.shape[-1]
    wy, wx, boxes = patch_boxes(h, w, grid, k, roi)
    wy, wx = wy.to(left.dtype), wx.to(left.dtype)
    maps = [torch.zeros(n_layers, c, h, w, dtype=left.dtype, device=left.device) for _ in range(3)]
    for i, j, y0, y1, x0, x1 in boxes:
        part = closed_form_layers(left[:, y0:y1, x0:x1], right[:, y0:y1, x0:x1], kernels[i * grid[1] + j], lam)
        weight = (wy[i, y0:y1, None] * wx[j, None, x0:x1]).to(left.device)
        for full, tile in zip(maps, (part.latent, part.blur_left, part.blur_right)):
            full[..., y0:y1, x0:x1] += tile * weight
    latent, bl, br = (m.to(store_dtype) for m in maps)
    return LayerStack(latent, bl, br, time.perf_counter() - start)


def patch_boxes(h: int, w: int, grid: tuple[int, int], k: int, roi: tuple[int, int, int, int] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int, int, int, int]]]:
    """Geometry of :func:`closed_form_layers_patched`: the tent weights per grid row (rows, h) and
    column (cols, w), float64, and per patch (i, j, y0, y1, x0, x1), the box it is solved on (its
    tent's support plus ``k`` px of context, clipped to the image)."""
    rows, cols = grid
    r0, r1, c0, c1 = roi or (0, h, 0, w)
    ph, pw = (r1 - r0) / rows, (c1 - c0) / cols
    wy = tent_weights(h, [r0 + i * ph for i in range(rows)], ph)
    wx = tent_weights(w, [c0 + j * pw for j in range(cols)], pw)
    boxes = []
    for i in range(rows):
        ys = torch.nonzero(wy[i] > 0).flatten()
        y0, y1 = max(0, int(ys[0]) - k), min(h, int(ys[-1]) + 1 + k)
        for j in range(cols):
            xs = torch.nonzero(wx[j] > 0).flatten()
            x0, x1 = max(0, int(xs[0]) - k), min(w, int(xs[-1]) + 1 + k)
            boxes.append((i, j, y0, y1, x0, x1))
    return wy, wx, boxes


def closed_form_cost(h: int, w: int, k: int, n_layers: int, grid: tuple[int, int] | None = None,
                     roi: tuple[int, int, int, int] | None = None) -> float:
    """Relative cost (FFT work, sum of n log n over the transforms) of :func:`closed_form_layers` on
    an (h, w) image with K = ``k`` kernels, or of :func:`closed_form_layers_patched` with ``grid``.
    Used to predict one closed-form solve's time from another's (the time budget)."""
    if grid is None:
        sizes = [(h, w)]
    else:
        sizes = [(y1 - y0, x1 - x0) for _, _, y0, y1, x0, x1 in patch_boxes(h, w, grid, k, roi)[2]]
    total = 0.0
    for th, tw in sizes:
        n = fast_len(th + 4 * k) * fast_len(tw + 4 * k)  # taper_pad's 2k margin on each side
        total += (3 * n_layers + 2) * n * math.log2(max(n, 2))  # 2 forward, 3 inverse FFTs per layer
    return total


def iterative_layers(left: torch.Tensor, right: torch.Tensor, kernels: torch.Tensor, iters: int,
                     lr: float = 0.01, deadline: float | None = None,
                     store_dtype: torch.dtype = torch.float32) -> LayerStack:
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
    done = 0
    for _ in range(int(iters)):
        fx = torch.fft.rfft2(x)
        el = pl.crop(torch.fft.irfft2(fx * kl, s=shape)) - yl
        er = pr.crop(torch.fft.irfft2(fx * kr, s=shape)) - yr
        loss = (el.square().mean() + er.square().mean()) * n_layers
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += 1
        if past(deadline):
            break
    with torch.no_grad():
        fx = torch.fft.rfft2(x)
        latent = pl.crop(x).to(store_dtype)
        bl = pl.crop(torch.fft.irfft2(fx * kl, s=shape)).to(store_dtype)
        br = pl.crop(torch.fft.irfft2(fx * kr, s=shape)).to(store_dtype)
    return LayerStack(latent.detach(), bl, br, time.perf_counter() - start, iters=done)
