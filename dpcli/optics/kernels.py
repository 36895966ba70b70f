"""Dual-pixel point-spread functions (PSFs) for any signed, fractional blur radius.

Model (RDPD, Abuolaim et al. 2021, used by DefocusGAN and the zero-shot MPI thesis), see
CONVENTIONS.md "Defocus maps":

* integer radius ``n = |r|``, kernel size ``k = 2n + 1``;
* a filled disk of radius ``n`` times the high-pass Butterworth profile
  ``(rho^2/D0^2)^o / (1 + (rho^2/D0^2)^o)`` with ``D0 = (k - 1) / cutoff``, rescaled inside the
  disk to ``[beta, 1]`` (bright rim, dimmer centre, as measured DP PSFs look);
* a Gaussian smoothing of size ``round(k/7) + 1`` (made odd) and OpenCV's default sigma
  ``0.3((size - 1)/2 - 1) + 0.8``;
* left = smoothed kernel times a linear ramp 0..1 along +x, right = its mirror, each normalised;
  the unnormalised left + right is the smoothed (combined) kernel. A negative radius swaps them.

Fractional radii interpolate linearly between the two neighbouring integer-size kernels (both
centred in one common array), so kernels are differentiable in the radius and a defocus map can
be optimised through them. Every function returns float tensors on ``radius.device`` /
``radius.dtype``; shapes are in the docstrings.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.errors import InputError

__all__ = [
    "kernel_size_for",
    "rdpd_kernel_bank",
    "dp_kernels",
    "combined_kernel",
    "translating_disk_kernels",
    "disk_kernel",
    "gaussian_kernel",
    "kernel_centroid",
    "recentre_kernels",
    "scale_kernels",
    "load_measured_kernels",
    "equivalent_radius",
    "MeasuredKernelFn",
]


def kernel_size_for(radius: torch.Tensor | float) -> int:
    """Odd kernel size ``2 * ceil(max |r|) + 1`` that holds every radius given."""
    r = float(torch.as_tensor(radius).detach().abs().max()) if torch.as_tensor(radius).numel() else 0.0
    return 2 * int(math.ceil(r - 1e-9)) + 1


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


@lru_cache(maxsize=4096)
def _rdpd_combined_np(n: int, order: int, cutoff: float, beta: float) -> np.ndarray:
    """Unnormalised smoothed RDPD kernel of integer radius ``n``: float64 (2n+1, 2n+1)."""
    if n == 0:
        return np.ones((1, 1))
    k = 2 * n + 1
    yy, xx = np.mgrid[-n : n + 1, -n : n + 1].astype(np.float64)
    rho2 = xx**2 + yy**2
    disk = rho2 <= n * n
    d0 = (k - 1) / cutoff
    q = (rho2 / d0**2) ** order
    bw = q / (1.0 + q)
    inside = bw[disk]
    lo, hi = inside.min(), inside.max()
    scaled = beta + (1 - beta) * (bw - lo) / (hi - lo) if hi > lo else np.ones_like(bw)
    kern = np.where(disk, scaled, 0.0)
    size = int(math.floor(k / 7 + 0.5)) + 1
    size += 1 - size % 2  # the RDPD recipe asks for an odd smoothing window: round up
    if size > 1:
        sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
        g = _gaussian_1d(size, sigma)
        pad = size // 2
        padded = np.pad(kern, pad)  # zero padding, result cropped back to k x k as in RDPD
        tmp = np.stack([np.convolve(row, g, mode="valid") for row in padded])
        kern = np.stack([np.convolve(col, g, mode="valid") for col in tmp.T]).T
    return kern


def _ramp(k: int) -> np.ndarray:
    return np.full((1, 1), 0.5) if k == 1 else np.linspace(0.0, 1.0, k)[None, :]


def _centre_pad(kern: np.ndarray, size: int) -> np.ndarray:
    p = (size - kern.shape[-1]) // 2
    return np.pad(kern, ((p, p), (p, p)))


@lru_cache(maxsize=256)
def _bank_np(kind: str, n_max: int, size: int, order: int, cutoff: float, beta: float) -> np.ndarray:
    """(n_max + 1, 3, size, size) float64: [left, right, combined] per integer radius, normalised."""
    out = np.zeros((n_max + 1, 3, size, size))
    for n in range(n_max + 1):
        k = 2 * n + 1
        if kind == "rdpd":
            comb = _rdpd_combined_np(n, order, cutoff, beta)
        else:  # "disk": BaMBNet's translating disk (binary disk, no Butterworth shaping)
            yy, xx = np.mgrid[-n : n + 1, -n : n + 1]
            comb = (xx**2 + yy**2 <= n * n).astype(np.float64)
        ramp = _ramp(k)
        left, right = comb * ramp, comb * ramp[:, ::-1]
        for j, kern in enumerate((left / left.sum(), right / right.sum(), comb / comb.sum())):
            out[n, j] = _centre_pad(kern, size)
    return out


def rdpd_kernel_bank(n_max: int, size: int | None = None, order: int = 3, cutoff: float = 2.5,
                     beta: float = 0.1, kind: str = "rdpd", device=None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised kernels of every integer radius 0..n_max.

    Returns:
        (n_max + 1, 3, k, k) tensor holding [left, right, combined] for a positive radius;
        ``k = 2 * n_max + 1`` unless ``size`` (odd, >= that) is given.
    """
    size = 2 * n_max + 1 if size is None else int(size)
    if size % 2 == 0 or size < 2 * n_max + 1:
        raise ValueError(f"kernel size must be odd and >= {2 * n_max + 1}, got {size}")
    bank = _bank_np(kind, int(n_max), size, int(order), float(cutoff), float(beta))
    return torch.tensor(bank, dtype=dtype, device=device)  # a copy: the cache stays intact


def _interp_kernels(radius: torch.Tensor, size: int | None, kind: str, order: int, cutoff: float,
                    beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    radius = torch.as_tensor(radius)
    if not radius.is_floating_point():
        radius = radius.float()
    if radius.ndim != 1:
        raise ValueError(f"radius must have shape (B,), got {tuple(radius.shape)}")
    need = kernel_size_for(radius)
    size = need if size is None else int(size)
    if size < need or size % 2 == 0:
        raise ValueError(f"kernel size {size} too small or even for |radius| up to "
                         f"{float(radius.detach().abs().max()):.3f} (needs odd >= {need})")
    mag = radius.abs()
    lo = torch.floor(mag.detach()).long()
    hi = torch.clamp(lo + 1, max=(size - 1) // 2)
    t = (mag - lo.to(mag.dtype)).unsqueeze(-1).unsqueeze(-1)  # carries the gradient to the radius
    bank = rdpd_kernel_bank((size - 1) // 2, size, order, cutoff, beta, kind, radius.device, radius.dtype)
    kern = (1 - t.unsqueeze(1)) * bank[lo] + t.unsqueeze(1) * bank[hi]  # (B, 3, k, k)
    left, right, comb = kern[:, 0], kern[:, 1], kern[:, 2]
    neg = (radius < 0).view(-1, 1, 1)
    return torch.where(neg, right, left), torch.where(neg, left, right), comb


def dp_kernels(radius: torch.Tensor, size: int | None = None, order: int = 3, cutoff: float = 2.5,
               beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right RDPD dual-pixel kernels for signed, fractional radii.

    Args:
        radius: (B,) signed blur radius in px (positive = behind the focal plane).
        size: odd kernel size; default ``2 * ceil(max |r|) + 1``. Kernels are zero-padded to it.
        order, cutoff, beta: Butterworth order, cutoff factor and floor (RDPD uses
            order 3|6, cutoff 2.5|2, beta 0.1|0.2).

    Returns:
        (left, right), each (B, k, k), each summing to 1, differentiable in ``radius``.
        For r > 0 the left kernel's mass lies toward +x (left view displaced to +x).

    Example:
        >>> l, r = dp_kernels(torch.tensor([0.0, 2.5, -4.0]))
        >>> l.shape
        torch.Size([3, 9, 9])
    """
    left, right, _ = _interp_kernels(radius, size, "rdpd", order, cutoff, beta)
    return left, right


def combined_kernel(radius: torch.Tensor, size: int | None = None, order: int = 3,
                    cutoff: float = 2.5, beta: float = 0.1) -> torch.Tensor:
    """Combined (left + right) / 2 RDPD kernel, (B,) radius -> (B, k, k), sums to 1."""
    return _interp_kernels(radius, size, "rdpd", order, cutoff, beta)[2]


def translating_disk_kernels(radius: torch.Tensor, size: int | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """BaMBNet's COC-loss DP kernels: a binary disk times a horizontal ramp (Punnappurath et al.).

    Args:
        radius: (B,) signed radius in px; fractional radii interpolate integer sizes.
        size: odd kernel size (default from max |r|).

    Returns:
        (left, right), each (B, k, k) summing to 1; a negative radius swaps them.
    """
    left, right, _ = _interp_kernels(radius, size, "disk", 3, 2.5, 0.1)
    return left, right


def disk_kernel(radius: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Anti-aliased uniform disk (DefocusGAN's disk baseline), (B,) |radius| -> (B, k, k), sums to 1.

    Pixel weight ``clamp(|r| + 0.5 - rho, 0, 1)``: smooth (differentiable) in the radius; r = 0
    gives a delta.
    """
    radius = torch.as_tensor(radius, dtype=torch.float32) if not torch.is_tensor(radius) else radius
    size = kernel_size_for(radius) if size is None else int(size)
    n = (size - 1) // 2
    ax = torch.arange(-n, n + 1, device=radius.device, dtype=radius.dtype)
    rho = torch.sqrt(ax[None, :] ** 2 + ax[:, None] ** 2)
    w = torch.clamp(radius.abs().view(-1, 1, 1) + 0.5 - rho, 0.0, 1.0)
    return w / w.sum(dim=(-2, -1), keepdim=True)


def gaussian_kernel(sigma: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Isotropic Gaussian (DefocusGAN's Gaussian baseline), (B,) sigma px -> (B, k, k), sums to 1.

    Default size ``2 * ceil(3 max sigma) + 1``; sigma = 0 gives a delta.
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float32) if not torch.is_tensor(sigma) else sigma
    size = kernel_size_for(3 * sigma) if size is None else int(size)
    n = (size - 1) // 2
    ax = torch.arange(-n, n + 1, device=sigma.device, dtype=sigma.dtype)
    rho2 = (ax[None, :] ** 2 + ax[:, None] ** 2)
    s2 = sigma.abs().view(-1, 1, 1).clamp_min(1e-3) ** 2
    w = torch.exp(-rho2 / (2 * s2))
    return w / w.sum(dim=(-2, -1), keepdim=True)


def kernel_centroid(kernel: torch.Tensor) -> torch.Tensor:
    """(…, kh, kw) -> (…, 2) centroid (x, y) in px relative to the array centre."""
    kh, kw = kernel.shape[-2:]
    ys = torch.arange(kh, dtype=kernel.dtype, device=kernel.device) - (kh - 1) / 2
    xs = torch.arange(kw, dtype=kernel.dtype, device=kernel.device) - (kw - 1) / 2
    mass = kernel.sum(dim=(-2, -1))
    cx = (kernel.sum(-2) * xs).sum(-1) / mass
    cy = (kernel.sum(-1) * ys).sum(-1) / mass
    return torch.stack([cx, cy], dim=-1)


def _shift(kernel: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Bilinear sub-pixel shift of (P, kh, kw) kernels by (dx, dy) px (zeros enter at the edges)."""
    p, kh, kw = kernel.shape
    theta = torch.zeros(p, 2, 3, dtype=kernel.dtype, device=kernel.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = -dx * 2 / kw
    theta[:, 1, 2] = -dy * 2 / kh
    grid = F.affine_grid(theta, [p, 1, kh, kw], align_corners=False)
    return F.grid_sample(kernel[:, None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


def recentre_kernels(left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each (left, right) pair so the centroid of left + right sits at the array centre.

    Both kernels move by the same amount, so their left/right offset (the DP disparity) stays.
    Bilinear resampling (slight smoothing of < 1 px) chosen over a Fourier shift, which rings.
    Shapes: (P, k, k) each -> same; each output sums to 1.
    """
    for _ in range(3):  # mass leaving the array edge moves the centroid: repeat to converge
        c = kernel_centroid(left + right)
        left = _shift(left, -c[:, 0], -c[:, 1]).clamp_min(0)
        right = _shift(right, -c[:, 0], -c[:, 1]).clamp_min(0)
        left = left / left.sum((-2, -1), keepdim=True)
        right = right / right.sum((-2, -1), keepdim=True)
    return left, right


def scale_kernels(kernel: torch.Tensor, factor: torch.Tensor | float, size: int | None = None
                  ) -> torch.Tensor:
    """Resize measured kernels by a signed factor (Xin et al.: defocus scales the PSF).

    Args:
        kernel: (P, k, k) kernels centred in their arrays.
        factor: scalar or (P,) signed scale; ``|factor|`` stretches the PSF about the centre,
            a negative factor also mirrors it horizontally (front vs back focus flips the DP
            blur, thesis 004); 0 gives a delta. Differentiable in ``factor``.
        size: odd output size (default: the input size).

    Returns:
        (P, size, size) kernels summing to 1.
    """
    p, kh, kw = kernel.shape
    size = kw if size is None else int(size)
    factor = torch.as_tensor(factor, dtype=kernel.dtype, device=kernel.device).reshape(-1)
    factor = factor.expand(p)
    s = factor.abs().clamp_min(1e-3)
    n = (size - 1) / 2
    ax = torch.arange(size, dtype=kernel.dtype, device=kernel.device) - n
    # sample the source at x / s; grid coordinates normalised to the source array
    xs = ax.view(1, 1, -1) / s.view(-1, 1, 1) * torch.sign(factor + (factor == 0).to(factor.dtype)).view(-1, 1, 1)
    ys = ax.view(1, -1, 1) / s.view(-1, 1, 1)
    gx = (xs * 2 / kw).expand(p, size, size)
    gy = (ys * 2 / kh).expand(p, size, size)
    grid = torch.stack([gx, gy], dim=-1)
    out = F.grid_sample(kernel[:, None], grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)[:, 0].clamp_min(0)
    delta = torch.zeros_like(out)
    delta[:, size // 2, size // 2] = 1
    total = out.sum((-2, -1), keepdim=True)
    small = (total <= 1e-12) | (factor.abs() < 1e-3).view(-1, 1, 1)
    return torch.where(small, delta, out / total.clamp_min(1e-12))


# The Pixel 4 calibration format (Xin et al.): the GT crop of the 1512 x 2016 views and the kernel grid
PIXEL4_CROP = (252, 1260, 336, 1680)  # row0, row1, col0, col1 of the GT crop in the views
PIXEL4_PATCH = 168  # calibration kernels: one per 168-px patch of the crop, row-major 6 x 8
PIXEL4_GRID = (6, 8)


def kernel_grid_roi(h: int, w: int, grid: tuple[int, int]) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of an (h, w) view that a measured kernel grid covers: the GT crop
    for a full 1512 x 2016 Pixel 4 view with its 6 x 8 calibration grid, else the whole view."""
    return PIXEL4_CROP if (h, w) == (1512, 2016) and tuple(grid) == PIXEL4_GRID else (0, h, 0, w)


def load_measured_kernels(path_left: str | Path, path_right: str | Path, recentre: bool = True
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Read measured per-patch DP kernels in the Pixel 4 calibration format.

    Args:
        path_left, path_right: ``.npy`` files of shape (P, k, k) (Pixel 4: (48, 61, 61), one kernel
            per 168-px patch of the central crop, row-major 6 x 8).
        recentre: shift each pair so the centroid of left + right is at the array centre.

    Returns:
        (left, right) float32 (P, k, k), each kernel summing to 1. File names are kept as given:
        for Pixel 4 the file named ``left`` behaves like our right view (docs/CONVENTIONS.md); the caller
        swaps explicitly.

    Raises:
        InputError: missing file, wrong shape or mismatched pair.
    """
    arrays = []
    for path in (Path(path_left), Path(path_right)):
        if not path.exists():
            raise InputError("no such kernel file", path)
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"cannot read kernels (not a readable NumPy .npy file)", path) from None
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
            raise InputError(f"expected kernels of shape (P, k, k), got {arr.shape}", path)
        arrays.append(torch.as_tensor(np.asarray(arr, dtype=np.float32)))
    left, right = arrays
    if left.shape != right.shape:
        raise InputError(f"left kernels {tuple(left.shape)} and right {tuple(right.shape)} differ",
                         path_right)
    left = left.clamp_min(0)
    right = right.clamp_min(0)
    left = left / left.sum((-2, -1), keepdim=True).clamp_min(1e-12)
    right = right / right.sum((-2, -1), keepdim=True).clamp_min(1e-12)
    return recentre_kernels(left, right) if recentre else (left, right)


def equivalent_radius(kernel: torch.Tensor, order: int = 3, cutoff: float = 2.5,
                      beta: float = 0.1) -> torch.Tensor:
    """Radius of the RDPD combined kernel with the same spread E[rho^2] as ``kernel``.

    Gives measured kernels a defocus radius on the same scale as :func:`dp_kernels`.
    Shapes: (P, k, k) -> (P,).
    """
    k = kernel.shape[-1]
    ax = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    rho2 = ax[None, :] ** 2 + ax[:, None] ** 2
    kern = kernel.detach().double()
    m2 = (kern * rho2).sum((-2, -1)) / kern.sum((-2, -1))
    grid = torch.arange(0, (k - 1) / 2 + 1e-9, 0.05, dtype=torch.float64)
    ref = combined_kernel(grid, size=k, order=order, cutoff=cutoff, beta=beta)
    ref_m2 = (ref * rho2).sum((-2, -1))  # increasing in the radius
    idx = torch.searchsorted(ref_m2, m2).clamp(1, len(grid) - 1)
    t = (m2 - ref_m2[idx - 1]) / (ref_m2[idx] - ref_m2[idx - 1])
    return (grid[idx - 1] + t.clamp(0, 1) * 0.05).to(kernel.dtype)


class MeasuredKernelFn:
    """Kernels for any signed radius from one measured (left, right) pair, by scaling.

    ``fn(radius (J,), size=None) -> (left, right)`` each (J, k, k): the measured pair resized by
    ``radius / ref_radius`` (negative radii mirror in x, :func:`scale_kernels`). ``ref_radius``
    defaults to :func:`equivalent_radius` of the pair's combined kernel. With
    ``orient="auto"`` the pair is swapped if needed so that the left kernel's centroid lies at
    +x (docs/CONVENTIONS.md); ``swapped`` records whether that happened.
    """

    def __init__(self, left: torch.Tensor, right: torch.Tensor, ref_radius: float | None = None,
                 orient: str = "auto") -> None:
        if left.ndim != 2 or left.shape != right.shape:
            raise ValueError(f"expected two (k, k) kernels, got {tuple(left.shape)} and {tuple(right.shape)}")
        gap = float(kernel_centroid(left)[0] - kernel_centroid(right)[0])
        self.swapped = orient == "swap" or (orient == "auto" and gap < 0)
        self.left, self.right = (right, left) if self.swapped else (left, right)
        comb = (self.left + self.right)[None] / 2
        self.ref_radius = float(ref_radius) if ref_radius else float(equivalent_radius(comb)[0])
        # half-width holding 99.5 % of the mass: how far the kernel reaches per unit radius
        k = left.shape[-1]
        ax = torch.arange(k, dtype=left.dtype) - (k - 1) / 2
        rho = torch.sqrt(ax[None, :] ** 2 + ax[:, None] ** 2).flatten()
        order = torch.argsort(rho)
        mass = torch.cumsum(comb.flatten()[order], 0) / comb.sum()
        self.reach = float(rho[order][int(torch.searchsorted(mass, torch.tensor(0.995, dtype=mass.dtype)))])

    def __call__(self, radius: torch.Tensor, size: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        radius = torch.as_tensor(radius, dtype=self.left.dtype)
        factor = radius / self.ref_radius
        if size is None:
            size = kernel_size_for(factor.detach().abs().max() * self.reach)
        j = radius.shape[0]
        left = scale_kernels(self.left[None].expand(j, -1, -1).to(radius.device), factor, size)
        right = scale_kernels(self.right[None].expand(j, -1, -1).to(radius.device), factor, size)
        return left, right
