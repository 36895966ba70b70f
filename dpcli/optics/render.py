"""Layered (MPI-style) dual-pixel rendering with occlusion, and spatially varying blur.

Algebra (deepinv's ``SpaceVaryingBlur``): ``y = sum_k h_k * (w_k . x)``. A scene is a stack of
back-to-front layers (colour, alpha, signed radius); each layer's premultiplied colour and its
alpha are blurred with the layer's own kernels and the layers are composited front over back
with the blurred alphas (Xin et al., ICCV 2021):
``I = sum_i (h_i * (a_i c_i)) prod_{j > i} (1 - h_j * a_j)``. Everything here is linear light.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from dpcli.optics.conv import _index, blur
from dpcli.optics.kernels import dp_kernels, translating_disk_kernels
from dpcli.optics.windows import tent_weights

__all__ = [
    "RenderResult",
    "patch_weights",
    "space_varying_blur",
    "blur_layers",
    "over_composite",
    "render_mpi",
    "edge_asymmetry_mask",
    "blur_support",
    "blur_support_box",
    "render_layers",
]

KernelFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass
class RenderResult:
    """Output of :func:`render_layers`; images (B, C, H, W) linear, defocus (B, 1, H, W) signed px."""

    left: torch.Tensor
    right: torch.Tensor
    combined: torch.Tensor
    aif: torch.Tensor
    defocus: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return dict(left=self.left, right=self.right, combined=self.combined, aif=self.aif,
                    defocus=self.defocus)


def patch_weights(grid: tuple[int, int], height: int, width: int, device=None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Bilinear (tent) weights of a ``rows x cols`` grid of patch centres: (P, H, W), sum 1 per pixel.

    Patch p = row * cols + col (row-major, like the Pixel 4 calibration); pixels outside the
    outer centres take the nearest patch's kernel.
    """
    rows, cols = grid

    def axis(n: int, size: int) -> torch.Tensor:  # (n, size)
        return tent_weights(size, [i * size / n for i in range(n)], size / n).to(device=device, dtype=dtype)

    wy, wx = axis(rows, height), axis(cols, width)
    return (wy[:, None, :, None] * wx[None, :, None, :]).reshape(rows * cols, height, width)


def space_varying_blur(x: torch.Tensor, kernels: torch.Tensor, weights: torch.Tensor,
                       method: str = "auto", padding: str = "reflect") -> torch.Tensor:
    """``y = sum_k h_k * (w_k . x)``.

    Args:
        x: (B, C, H, W).
        kernels: (B|1, K, kh, kw).
        weights: (B|1, K, H, W) (or (B|1, K, 1, 1) for constants).

    Returns:
        (B, C, H, W).
    """
    b, c, h, w = x.shape
    k = kernels.shape[1]
    if weights.shape[1] != k:
        raise ValueError(f"{k} kernels but {weights.shape[1]} weight maps")
    xw = x[:, None] * weights[:, :, None]  # (B, K, C, H, W)
    kern = kernels.expand(b, k, *kernels.shape[-2:]).reshape(b * k, 1, *kernels.shape[-2:])
    y = blur(xw.reshape(b * k, c, h, w), kern, method=method, padding=padding)
    return y.reshape(b, k, c, h, w).sum(1)


def blur_layers(colors: torch.Tensor, alphas: torch.Tensor, kernels: torch.Tensor,
                patches: torch.Tensor | None = None, method: str = "auto",
                padding: str = "reflect") -> tuple[torch.Tensor, torch.Tensor]:
    """Blur each layer's premultiplied colour and alpha with its own kernel(s).

    Args:
        colors: (B, L, C, H, W) layer colours (not premultiplied).
        alphas: (B, L, 1, H, W) in [0, 1].
        kernels: one kernel per layer (L, k, k) or (B, L, k, k); or, with ``patches``, one per
            layer per patch (L, P, k, k) or (B, L, P, k, k).
        patches: (P, H, W) spatial weights of the patches (e.g. :func:`patch_weights`).

    Returns:
        (blurred premultiplied colours (B, L, C, H, W), blurred alphas (B, L, 1, H, W)).
    """
    b, nl, c, h, w = colors.shape
    x = torch.cat([colors * alphas, alphas], dim=2).reshape(b * nl, c + 1, h, w)
    kh, kw = kernels.shape[-2:]
    if patches is None:
        kern = kernels if kernels.ndim == 4 else kernels[None]
        kern = kern.expand(b, nl, kh, kw).reshape(b * nl, 1, kh, kw)
        y = blur(x, kern, method=method, padding=padding)
    else:
        kern = kernels if kernels.ndim == 5 else kernels[None]
        p = patches.shape[0]
        kern = kern.expand(b, nl, p, kh, kw).reshape(b * nl, p, kh, kw)
        y = space_varying_blur(x, kern, patches[None].to(x.dtype), method, padding)
    y = y.reshape(b, nl, c + 1, h, w)
    return y[:, :, :c], y[:, :, c:]


def over_composite(premult: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Back-to-front "over": (B, L, C, H, W) premultiplied colours, (B, L, 1, H, W) -> (B, C, H, W).

    Layer 0 is the farthest. ``I = sum_i c_i prod_{j > i} (1 - a_j)``.
    """
    out = torch.zeros_like(premult[:, 0])
    for i in range(premult.shape[1]):
        out = premult[:, i] + (1 - alphas[:, i].clamp(0, 1)) * out
    return out


def render_mpi(colors: torch.Tensor, alphas: torch.Tensor, kernels: torch.Tensor,
               patches: torch.Tensor | None = None, method: str = "auto",
               padding: str = "reflect") -> torch.Tensor:
    """One view of an MPI: blur every layer with its kernel(s), then composite (shapes: blur_layers)."""
    return over_composite(*blur_layers(colors, alphas, kernels, patches, method, padding))


def edge_asymmetry_mask(radius: torch.Tensor, centres: torch.Tensor, size: int,
                        strength: float) -> torch.Tensor:
    """Cat's-eye clipping of the aperture toward the frame edges (mechanical vignetting).

    A simple model: the PSF of radius r at normalised frame position u (|u| = 1 at the corners)
    is cut by a disk of radius |r| + 0.5 shifted by ``strength * r * u`` (signed r: the cut side
    flips between front and back focus, as the DP blur does).

    Args:
        radius: (J,) signed radii; centres: (P, 2) normalised (x, y) patch positions.
    Returns:
        (J, P, size, size) soft masks in [0, 1].
    """
    n = (size - 1) // 2
    ax = torch.arange(-n, n + 1, dtype=radius.dtype, device=radius.device)
    shift = strength * radius.view(-1, 1, 1) * centres.to(radius.dtype)[None]  # (J, P, 2)
    dx = ax.view(1, 1, 1, -1) - shift[..., 0, None, None]
    dy = ax.view(1, 1, -1, 1) - shift[..., 1, None, None]
    dist = torch.sqrt(dx**2 + dy**2 + 1e-12)
    return (radius.abs().view(-1, 1, 1, 1) + 0.5 - dist).clamp(0, 1)


def blur_support(x: torch.Tensor, kernel: torch.Tensor, method: str = "auto",
                 padding: str = "reflect", support: torch.Tensor | None = None) -> torch.Tensor:
    out, (oy0, oy1, ox0, ox1) = blur_support_box(x, kernel, method, padding, support)
    h, w = x.shape[-2:]
    return F.pad(out, (ox0, w - ox1, oy0, h - oy1))


def blur_support_box(x: torch.Tensor, kernel: torch.Tensor, method: str = "auto",
                     padding: str = "reflect", support: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """:func:`blur` of layer data that is zero outside a small region, computed on that region only.

    Exact (same result as ``blur(x, kernel)``): only the box around the non-zero support
    (including its mirror images in the boundary padding) is convolved; everything beyond the
    kernel reach stays exactly 0. Dead-leaves objects cover a small part of the frame, so this
    is much cheaper than full-frame blurs.

    Args:
        x: (N, C, H, W), zero outside its support (premultiplied colour and alpha).
        kernel: (N|1, 1|C, kh, kw).
        support: optional (H, W) bool, True wherever x may be non-zero (default: x != 0).

    :func:`blur_support_box` returns the blurred box and its frame rows/cols
    ``(y0, y1, x0, x1)``; outside the box the result is exactly 0.
    """
    h, w = x.shape[-2:]
    kh, kw = kernel.shape[-2:]
    top, left = kh - 1 - kh // 2, kw - 1 - kw // 2
    bottom, right = kh // 2, kw // 2
    if support is None:
        support = (x.detach() != 0).flatten(0, 1).any(0)
    rows_any, cols_any = support.any(1), support.any(0)
    if not bool(rows_any.any()):
        return x[..., :0, :0], (0, 0, 0, 0)
    iy = _axis_index(h, top, bottom, padding, x.device)  # padded axis -> frame index (-1: zero)
    ix = _axis_index(w, left, right, padding, x.device)
    prow = torch.nonzero((iy >= 0) & rows_any[iy.clamp_min(0)]).flatten()
    pcol = torch.nonzero((ix >= 0) & cols_any[ix.clamp_min(0)]).flatten()
    # y[i] reads padded rows i .. i + kh - 1: non-zero only for i in [Y0 - kh + 1, Y1)
    oy0, oy1 = max(0, int(prow[0]) - kh + 1), min(h, int(prow[-1]) + 1)
    ox0, ox1 = max(0, int(pcol[0]) - kw + 1), min(w, int(pcol[-1]) + 1)
    if (oy1 - oy0) * (ox1 - ox0) >= 0.7 * h * w:
        return blur(x, kernel, method=method, padding=padding), (0, h, 0, w)
    ry, rx = iy[oy0 : oy1 + kh - 1], ix[ox0 : ox1 + kw - 1]
    crop = x.index_select(-2, ry.clamp_min(0)).index_select(-1, rx.clamp_min(0))
    if padding == "zeros" and (bool((ry < 0).any()) or bool((rx < 0).any())):
        crop = crop * ((ry >= 0)[:, None] & (rx >= 0)[None, :]).to(crop.dtype)
    out = blur(crop, kernel, method=method, padding="zeros")
    return out[..., top : top + (oy1 - oy0), left : left + (ox1 - ox0)], (oy0, oy1, ox0, ox1)


def _bbox(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the True pixels of an (H, W) mask ((0, 0, 0, 0) when empty)."""
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    if rows.numel() == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _axis_index(n: int, before: int, after: int, padding: str, device) -> torch.Tensor:
    """Frame index of every position of a padded axis (-1 where zero padding)."""
    if padding == "zeros":
        i = torch.arange(-before, n + after, device=device)
        return torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1))
    return _index(n, before, after, padding, device)


def _layer_bins(radius_l: torch.Tensor, alpha_l: torch.Tensor, step: float,
                exact_constant: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer-spaced radius bins covering a layer and their hat weights (B, J, H, W)."""
    vis = alpha_l > 0
    vals = radius_l.detach()[vis] if vis.any() else radius_l.detach().reshape(-1)[:1]
    if exact_constant and float(vals.max() - vals.min()) < 1e-6:
        ones = torch.ones(radius_l.shape[0], 1, 1, 1, dtype=radius_l.dtype, device=radius_l.device)
        return vals[:1].clone(), ones  # one exact fractional kernel (no gradient to the map)
    lo = math.floor(float(vals.min()) / step)
    hi = math.ceil(float(vals.max()) / step)
    bins = torch.arange(lo, hi + 1, dtype=radius_l.dtype, device=radius_l.device) * step
    wts = (1 - (radius_l[:, None] - bins.view(1, -1, 1, 1)).abs() / step).clamp_min(0)  # (B, J, H, W)
    return bins, wts


def render_layers(colors: torch.Tensor, alphas: torch.Tensor, radius: torch.Tensor, *,
                  kernel: str | KernelFn = "rdpd", order: int = 3, cutoff: float = 2.5, beta: float = 0.1,
                  edge_asymmetry: float = 0.0, patch_grid: tuple[int, int] = (3, 3),
                  bin_step: float = 1.0, exact_constant: bool = False, method: str = "auto",
                  padding: str = "reflect") -> RenderResult:
    """Render a layered scene to a dual-pixel pair (LINEAR light in, linear light out).

    Args:
        colors: (B, L, C, H, W) layer colours, layer 0 farthest (back to front).
        alphas: (B, L, 1, H, W) coverage in [0, 1].
        radius: signed blur radius in px per layer, (B, L) for fronto-parallel layers, or a map
            (B, L, 1, H, W) (slanted planes: split into radius bins ``bin_step`` apart with
            linear (hat) weights, the same interpolation the kernels use for fractional radii).
        kernel: "rdpd" (Butterworth DP kernels), "disk" (translating disk), or a callable
            ``fn(radius (J,)) -> (left, right)`` each (J, k, k), e.g.
            :class:`dpcli.optics.MeasuredKernelFn` for measured kernels.
        order, cutoff, beta: RDPD kernel parameters.
        edge_asymmetry: 0 = shift-invariant kernels; > 0 clips kernels toward the frame edges
            (:func:`edge_asymmetry_mask`) on a ``patch_grid`` of kernels blended bilinearly.
        exact_constant: with radius maps, render a layer whose radius is constant with one exact
            kernel instead of two bins (faster; the map then gets no gradient from that layer).
        method, padding: passed to :func:`dpcli.optics.blur`.

    Returns:
        :class:`RenderResult` with left, right, combined = (left + right)/2, aif (all-in-focus)
        and defocus (signed radius of the front-most visible layer). Differentiable in colours,
        alphas and radius.
    """
    if colors.ndim != 5 or alphas.ndim != 5 or alphas.shape[2] != 1:
        raise ValueError(f"colors must be (B, L, C, H, W) and alphas (B, L, 1, H, W), got "
                         f"{tuple(colors.shape)} and {tuple(alphas.shape)}")
    b, nl, c, h, w = colors.shape
    per_pixel = radius.ndim == 5
    if not per_pixel and tuple(radius.shape) != (b, nl):
        raise ValueError(f"radius must be (B, L) or (B, L, 1, H, W), got {tuple(radius.shape)}")
    kfn, kargs = _kernel_fn(kernel, order, cutoff, beta)
    patches = centres = None
    if edge_asymmetry > 0:
        patches, centres = _edge_patches(patch_grid, h, w, colors)

    acc_l = torch.zeros(b, c + 1, h, w, dtype=colors.dtype, device=colors.device)
    acc_r = torch.zeros_like(acc_l)  # running "over" composites (colour + alpha channels)
    in_place = not (torch.is_grad_enabled() and any(
        t.requires_grad for t in (colors, alphas, radius)))
    aif = torch.zeros(b, c, h, w, dtype=colors.dtype, device=colors.device)
    for i in range(nl):
        x = torch.cat([colors[:, i] * alphas[:, i], alphas[:, i]], dim=1)  # (B, C+1, H, W)
        support = alphas[:, i, 0].detach().ne(0).any(0)  # (H, W)
        if per_pixel:
            bins, wts = _layer_bins(radius[:, i, 0], alphas[:, i, 0], bin_step, exact_constant)
            rr = bins  # (J,)
        else:
            rr = radius[:, i]  # (B,) one exact fractional kernel per image
            wts = torch.ones(b, 1, 1, 1, dtype=x.dtype, device=x.device)
        kern, wts = _layer_kernel_stack(kfn(rr, **kargs), rr, wts, per_pixel, patches, centres, edge_asymmetry)
        y, (y0, y1, x0, x1) = _blur_layer(x, kern, wts, support, method, padding)
        if in_place:  # composite inside the layer's box only (no autograd: in-place is safe)
            for acc, yv in ((acc_l, y[:, 0]), (acc_r, y[:, 1])):
                box = acc[..., y0:y1, x0:x1]
                box.mul_(1 - yv[:, c:].clamp(0, 1)).add_(yv)
            a0, a1, b0, b1 = _bbox(support)
            box = aif[..., a0:a1, b0:b1]
            box.mul_(1 - alphas[:, i, :, a0:a1, b0:b1].clamp(0, 1)).add_(x[:, :c, a0:a1, b0:b1])
        else:
            pad = (x0, w - x1, y0, h - y1)
            yl, yr = F.pad(y[:, 0], pad), F.pad(y[:, 1], pad)
            acc_l = yl + (1 - yl[:, c:].clamp(0, 1)) * acc_l
            acc_r = yr + (1 - yr[:, c:].clamp(0, 1)) * acc_r
            aif = x[:, :c] + (1 - alphas[:, i].clamp(0, 1)) * aif
    left, right = acc_l[:, :c], acc_r[:, :c]
    return RenderResult(left=left, right=right, combined=(left + right) / 2, aif=aif,
                        defocus=_front_radius(alphas, radius, per_pixel, colors))


def _kernel_fn(kernel: str | KernelFn, order: int, cutoff: float, beta: float) -> tuple[Callable, dict]:
    """The kernel function ``fn(radius (J,), **kwargs) -> (left, right)`` of ``kernel`` and its kwargs."""
    if callable(kernel):
        return kernel, {}
    if kernel in ("rdpd", "disk"):
        kfn = dp_kernels if kernel == "rdpd" else translating_disk_kernels
        return kfn, dict(order=order, cutoff=cutoff, beta=beta) if kernel == "rdpd" else {}
    raise ValueError(f"kernel must be 'rdpd', 'disk' or a callable, got {kernel!r}")


def _edge_patches(patch_grid: tuple[int, int], h: int, w: int, colors: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear weights (P, H, W) of a ``patch_grid`` of kernels and the patch centres (P, 2) in
    normalised frame coordinates (|u| = 1 at the corners)."""
    patches = patch_weights(patch_grid, h, w, colors.device, colors.dtype)
    gy, gx = patch_grid
    cy = (torch.arange(gy, dtype=colors.dtype) + 0.5) / gy * 2 - 1
    cx = (torch.arange(gx, dtype=colors.dtype) + 0.5) / gx * 2 - 1
    centres = torch.stack(torch.meshgrid(cx, cy, indexing="xy"), -1).reshape(-1, 2)
    return patches, (centres / math.sqrt(2)).to(colors.device)  # |u| = 1 at the corners


def _layer_kernel_stack(kernels: tuple[torch.Tensor, torch.Tensor], rr: torch.Tensor, wts: torch.Tensor,
                        per_pixel: bool, patches: torch.Tensor | None, centres: torch.Tensor | None,
                        edge_asymmetry: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's left and right kernels (J|B, k, k) as one stack (1|B, 2K, k, k) (left first),
    K = bins (radius maps) or 1, times the patches with edge asymmetry; with the (1|B, K, H|1, W|1)
    weight of each kernel."""
    kl, kr = kernels  # (J|B, k, k), k from max |rr|
    size = kl.shape[-1]
    if per_pixel:
        kl, kr = kl[None], kr[None]  # (1, J, k, k)
    else:
        kl, kr = kl[:, None], kr[:, None]  # (B, 1, k, k)
    if patches is not None:
        h, w = patches.shape[-2:]
        mask = edge_asymmetry_mask(rr, centres, size, edge_asymmetry)  # (J|B, P, k, k)
        mask = mask[None] if per_pixel else mask[:, None]  # (1|B, J|1, P, k, k)
        kl = kl[:, :, None] * mask
        kr = kr[:, :, None] * mask
        kl = kl / kl.sum((-2, -1), keepdim=True).clamp_min(1e-12)
        kr = kr / kr.sum((-2, -1), keepdim=True).clamp_min(1e-12)
        jn, pn = kl.shape[1], kl.shape[2]
        kl = kl.reshape(kl.shape[0], jn * pn, size, size)
        kr = kr.reshape(kr.shape[0], jn * pn, size, size)
        wts = (wts[:, :, None] * patches[None, None]).reshape(wts.shape[0], jn * pn, h, w)
    return torch.cat([kl, kr], dim=1), wts


def _blur_layer(x: torch.Tensor, kern: torch.Tensor, wts: torch.Tensor, support: torch.Tensor, method: str,
                padding: str) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Blur the premultiplied layer x (B, C+1, H, W) with every kernel of ``kern`` (1|B, 2K, k, k)
    under its weight, left and right (and all bins / patches) in one call, inside the box the
    blurred ``support`` reaches. Returns (B, 2, C+1, y1 - y0, x1 - x0) and the box (y0, y1, x0, x1)."""
    b, c1, h, w = x.shape
    size = kern.shape[-1]
    k2 = kern.shape[1] // 2
    if wts.shape[1] == 1 and wts.shape[-1] == 1:  # constant weight 1: no copy per kernel
        xw = x[:, None].expand(b, 2 * k2, c1, h, w)
    else:
        xw = x[:, None] * torch.cat([wts, wts], dim=1)[:, :, None]
    kk = kern.expand(b, 2 * k2, size, size).reshape(-1, 1, size, size)
    y, (y0, y1, x0, x1) = blur_support_box(xw.reshape(-1, c1, h, w), kk, method=method,
                                           padding=padding, support=support)
    return y.reshape(b, 2, k2, c1, y1 - y0, x1 - x0).sum(2), (y0, y1, x0, x1)


def _front_radius(alphas: torch.Tensor, radius: torch.Tensor, per_pixel: bool, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) defocus (dtype and device of ``like``): radius of the layer with the largest
    visibility a_i * prod_{j > i} (1 - a_j)."""
    b, nl, _, h, w = alphas.shape
    trans = torch.ones(b, 1, h, w, dtype=like.dtype, device=like.device)
    best = torch.full_like(trans, -1.0)
    defocus = torch.zeros_like(trans)
    for i in reversed(range(nl)):
        vis = alphas[:, i] * trans
        r_i = radius[:, i] if per_pixel else radius[:, i].view(b, 1, 1, 1).expand(b, 1, h, w)
        better = vis > best
        defocus = torch.where(better, r_i, defocus)
        best = torch.where(better, vis, best)
        trans = trans * (1 - alphas[:, i].clamp(0, 1))
    return defocus
