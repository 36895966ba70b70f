"""Degradations of sharp photos with known defocus blur: the broad benchmark's inputs
(``benchmarks/bench_broad.py``), deliberately NOT the training generator's.

Training renders layered scenes with the RDPD Butterworth kernels and linear-ramp DP kernels
(:mod:`dpcli.synth.scene`); here every blur is a plain geometric aperture (a disc, a polygon, a
Gaussian) and DP pairs use hard half-disc kernels, spatially varying blur is a per-pixel
interpolation between whole-image blurs (a gather renderer, no occlusion layers), noise is
Poisson-Gaussian and compression a real JPEG encoder. All images are linear light unless a name
says sRGB; tensors (B, C, H, W) float32.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch

from dpcli.optics.conv import blur
from dpcli.optics.kernels import disk_kernel, gaussian_kernel, kernel_size_for

__all__ = ["polygon_kernel", "half_disk_kernels", "uniform_blur", "varying_blur", "dp_pair", "radius_ramp",
           "poisson_gaussian", "jpeg_roundtrip", "PSFS"]

PSFS = ("disc", "polygon", "gaussian")


def polygon_kernel(radius: float, sides: int = 6, rotation: float = 0.3, size: int | None = None,
                   supersample: int = 8) -> torch.Tensor:
    """A regular polygon aperture (a lens with ``sides`` straight blades) of circumradius
    ``radius`` px, area-sampled on an 8x finer grid: (1, k, k), sums to 1; radius 0 -> a delta."""
    size = kernel_size_for(abs(radius)) if size is None else int(size)
    if radius < 0.25:
        k = torch.zeros(1, size, size)
        k[0, size // 2, size // 2] = 1.0
        return k
    n = (size - 1) / 2
    ax = (torch.arange(size * supersample, dtype=torch.float64) + 0.5) / supersample - 0.5 - n
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    inside = torch.ones_like(x, dtype=torch.bool)
    apothem = radius * math.cos(math.pi / sides)
    for s in range(sides):  # the half-planes bounded by each blade
        a = rotation + 2 * math.pi * (s + 0.5) / sides
        inside &= x * math.cos(a) + y * math.sin(a) <= apothem
    w = inside.double().reshape(size, supersample, size, supersample).mean(dim=(1, 3))
    return (w / w.sum()).float()[None]


def half_disk_kernels(radius: float, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard half-disc DP kernels (no ramp, no Butterworth edge): for a positive radius the left
    view's kernel is the disc's +x half, the right's its -x half (the centre column shared), so
    the left view moves toward +x as CONVENTIONS.md says; a negative radius swaps them.
    Returns (left, right), each (1, k, k) summing to 1."""
    disc = disk_kernel(torch.tensor([abs(float(radius))]), size)
    k = disc.shape[-1]
    x = torch.arange(k, dtype=torch.float32) - k // 2
    plus = (x > 0).float() + 0.5 * (x == 0).float()
    left, right = disc * plus, disc * plus.flip(0)
    left, right = left / left.sum(), right / right.sum()
    return (left, right) if radius >= 0 else (right, left)


def _kernel(psf: str, radius: float) -> torch.Tensor:
    """(1, k, k) kernel of an aperture named in :data:`PSFS` whose size parameter is ``radius``
    (a Gaussian's sigma is radius / 2: the per-axis spread of a disc of that radius)."""
    if psf == "disc":
        return disk_kernel(torch.tensor([float(radius)]))
    if psf == "polygon":
        return polygon_kernel(radius)
    if psf == "gaussian":
        return gaussian_kernel(torch.tensor([max(float(radius) / 2, 1e-3)]))
    raise ValueError(f"psf must be one of {', '.join(PSFS)}, got {psf!r}")


def uniform_blur(image: torch.Tensor, psf: str, radius: float) -> torch.Tensor:
    """(B, C, H, W) linear image blurred by one aperture over the whole frame (reflect borders)."""
    if radius <= 0:
        return image.clone()
    return blur(image, _kernel(psf, radius)[:, None])


def radius_ramp(h: int, w: int, low: float, high: float, direction: str = "vertical") -> torch.Tensor:
    """(1, 1, H, W) blur-radius map rising linearly from ``low`` to ``high`` px (top to bottom, or
    left to right): a tilted plane such as a table or a street seen at an angle."""
    n = h if direction == "vertical" else w
    t = torch.linspace(low, high, n)
    return (t[:, None].expand(h, w) if direction == "vertical" else t[None, :].expand(h, w))[None, None].clone()


def _interpolated(images: list[torch.Tensor], grid: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Per pixel, the tent interpolation between whole-frame blurs at the grid radii."""
    r = radius.clamp(float(grid[0]), float(grid[-1]))
    out = torch.zeros_like(images[0])
    for i, im in enumerate(images):
        lo = grid[i - 1] if i > 0 else grid[i] - 1
        hi = grid[i + 1] if i + 1 < len(grid) else grid[i] + 1
        w = torch.where(r <= grid[i], (r - lo) / (grid[i] - lo), (hi - r) / (hi - grid[i])).clamp(0, 1)
        out = out + w * im
    return out


def varying_blur(image: torch.Tensor, radius: torch.Tensor, psf: str = "disc", step: float = 0.5) -> torch.Tensor:
    """Spatially varying blur by gathering: the frame blurred at radii 0, step, 2 step, ... and
    each pixel interpolated between the two blurs nearest its own radius (no occlusion model).

    Args:
        image: (B, C, H, W) linear; radius: (B|1, 1, H, W) blur radius in px (>= 0).
    """
    top = float(radius.max())
    grid = torch.arange(0.0, top + step, step)
    return _interpolated([uniform_blur(image, psf, float(r)) for r in grid], grid, radius)


def dp_pair(image: torch.Tensor, radius: torch.Tensor, step: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """A DP pair of a sharp linear image under a signed blur-radius map, with hard half-disc
    kernels (:func:`half_disk_kernels`) gathered per pixel as :func:`varying_blur` does.
    (B, C, H, W), (B|1, 1, H, W) -> (left, right), each (B, C, H, W)."""
    lo, hi = float(radius.min()), float(radius.max())
    grid = torch.arange(math.floor(lo / step) * step, hi + step, step)
    lefts, rights = [], []
    for r in grid:
        kl, kr = half_disk_kernels(float(r))
        lefts.append(blur(image, kl[:, None]))
        rights.append(blur(image, kr[:, None]))
    return _interpolated(lefts, grid, radius), _interpolated(rights, grid, radius)


def poisson_gaussian(image: torch.Tensor, photons: float, read: float, seed: int) -> torch.Tensor:
    """Sensor noise on a linear image: shot noise of ``photons`` electrons at white (Gaussian
    approximation, variance x / photons) plus read noise of std ``read`` (in [0, 1] units)."""
    g = torch.Generator().manual_seed(seed)
    std = torch.sqrt(image.clamp(min=0) / photons + read**2)
    return (image + std * torch.randn(image.shape, generator=g)).clamp(0, 1)


def jpeg_roundtrip(srgb: np.ndarray, quality: int = 85) -> np.ndarray:
    """(3, H, W) float sRGB in [0, 1] saved as an 8-bit JPEG (4:2:0, Pillow) and read back."""
    from PIL import Image

    u8 = np.round(np.clip(srgb, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0
    return np.ascontiguousarray(back.transpose(2, 0, 1))
