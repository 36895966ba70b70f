"""MPI layer radii and per-layer DP kernels (thesis 004, section 3.1 and Eq. 11).

Every layer's kernel pair is obtained by linearly downsizing the largest kernel pair (size
2N + 1) to size ``2 * round(|r_i|) + 1`` and zero-padding it back to 2N + 1, as in the thesis;
front-focus layers (r > 0) downsize the front kernels ``f``, back-focus layers the back ones
``b``. The largest kernels come from the parametric RDPD model (``dpcli.optics.dp_kernels``),
from measured calibration kernels, or (stage 3) from the learned generators G_F.
:func:`prepare_kernels` sets up the radii and largest kernels every stage starts from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dpcli.arrays import to_tensor
from dpcli.optics import dp_kernels, kernel_centroid, scale_kernels


def layer_radii(layers: int, max_radius: float, focus: str) -> torch.Tensor:
    """Signed radius (px) of every MPI layer, ascending: (L,) with L = N+1 or 2N+1."""
    n = layers - 1
    pos = torch.linspace(0.0, float(max_radius), layers) if n > 0 else torch.zeros(1)
    if focus == "front":
        return pos
    if focus == "back":
        return -pos.flip(0)
    if focus == "both":
        return torch.cat([-pos[1:].flip(0), pos])
    raise ValueError(f"focus must be front, back or both, got {focus!r}")


def kernel_size(max_radius: float) -> int:
    return 2 * int(math.ceil(max_radius - 1e-9)) + 1


def parametric_max_kernels(max_radius: float, beta: float = 0.1) -> dict[str, torch.Tensor]:
    """Largest parametric kernels: {"f": (2, K, K) front [left, right], "b": back}, K = 2ceil(r)+1.
    ``beta``: the RDPD ramp floor (0.1 in RDPD; larger values separate the views less)."""
    k = kernel_size(max_radius)
    fl, fr = dp_kernels(torch.tensor([float(max_radius)]), size=k, beta=beta)
    bl, br = dp_kernels(torch.tensor([-float(max_radius)]), size=k, beta=beta)
    return {"f": torch.cat([fl, fr]), "b": torch.cat([bl, br])}


def measured_radius(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Radius of measured kernel pairs from their centroid gap: the RDPD ramp kernels' centroids
    sit about |r|/2 apart (docs/CONVENTIONS.md), so r = 2 * gap. (P, k, k) x2 -> (P,) signed."""
    gap = kernel_centroid(left)[:, 0] - kernel_centroid(right)[:, 0]
    return 2.0 * gap


def measured_max_kernels(left: torch.Tensor, right: torch.Tensor, max_radius: float
                         ) -> dict[str, torch.Tensor]:
    """Measured per-patch kernels (P, k, k) (front focus, our orientation) rescaled to the
    largest layer radius: {"f": (P, 2, K, K), "b": (P, 2, K, K)} (back = mirrored front)."""
    both = measured_layer_kernels(left, right, torch.tensor([float(max_radius), -float(max_radius)]),
                                  kernel_size(max_radius))
    return {"f": both[:, 0], "b": both[:, 1]}


def measured_layer_kernels(left: torch.Tensor, right: torch.Tensor, radii: torch.Tensor, size: int
                           ) -> torch.Tensor:
    """Measured per-patch kernels (P, k, k) (front focus, our orientation) stretched to every layer
    radius (Xin et al.'s PSF scaling; a negative radius mirrors them): (P, L, 2, size, size).

    Ours, not the thesis': downsizing one largest measured kernel (:func:`layer_kernels`) crops it
    at the array edge and softens its shape; scaling each layer from the calibration keeps both
    (closed-form stage 1 on our 4 Pixel 4 dev scenes: see ``ZeroShotConfig``)."""
    r_cal = measured_radius(left, right).abs().clamp_min(0.5)
    per_layer = []
    for r in radii.tolist():
        factor = r / r_cal
        per_layer.append(torch.stack([scale_kernels(left, factor, size=size),
                                      scale_kernels(right, factor, size=size)], 1))
    return torch.stack(per_layer, 1)


def downsize(kmax: torch.Tensor, radius: float) -> torch.Tensor:
    """Downsize (..., K, K) kernels to ``2 round(|radius|) + 1`` (antialiased bilinear, i.e. linear
    downsizing), zero-pad back to K, renormalise. Differentiable in ``kmax``."""
    size = kmax.shape[-1]
    m = 2 * int(round(abs(radius))) + 1
    if m >= size:
        return kmax
    lead = kmax.shape[:-2]
    flat = kmax.reshape(-1, 1, size, size)
    if m == 1:
        small = flat.sum((-2, -1), keepdim=True)
    else:
        small = F.interpolate(flat, size=(m, m), mode="bilinear", antialias=True, align_corners=False)
    small = small.clamp_min(0)
    small = small / small.sum((-2, -1), keepdim=True).clamp_min(1e-12)
    p = (size - m) // 2
    return F.pad(small, (p, p, p, p)).reshape(*lead, size, size)


def layer_kernels(kmax: dict[str, torch.Tensor], radii: torch.Tensor) -> torch.Tensor:
    """Kernels of every layer.

    Args:
        kmax: {"f": (..., 2, K, K), "b": (..., 2, K, K)} largest [left, right] kernels.
        radii: (L,) signed layer radii.

    Returns:
        (..., L, 2, K, K): layer i's [left, right] kernels.
    """
    out = []
    for r in radii.tolist():
        src = kmax["f"] if r >= 0 else kmax["b"]
        out.append(downsize(src, r))
    return torch.stack(out, dim=-4)


def nearest_patch(h: int, w: int, grid: tuple[int, int], roi: tuple[int, int, int, int]) -> torch.Tensor:
    """(P,) index of the kernel-grid patch (grid over ``roi``) nearest to the centre of each patch of
    the same grid spread over the whole (h, w) image (stage 3's tiles); identity when roi is all."""
    rows, cols = grid
    r0, r1, c0, c1 = roi
    idx = []
    for i in range(rows):
        for j in range(cols):
            y, x = (i + 0.5) * h / rows, (j + 0.5) * w / cols
            gi = min(max(int((y - r0) // ((r1 - r0) / rows)), 0), rows - 1)
            gj = min(max(int((x - c0) // ((c1 - c0) / cols)), 0), cols - 1)
            idx.append(gi * cols + gj)
    return torch.tensor(idx)


@dataclass
class KernelSetup:
    """The kernels every stage starts from (:func:`prepare_kernels`).

    Attributes:
        radii: (L,) signed layer radii in px (CPU).
        uniform: {"f"|"b": (2, K, K)} field-uniform largest [left, right] kernels (parametric, or
            the field mean of the calibration).
        start: {"f"|"b": (P|1, 2, K, K)} largest kernels G_F starts from, per stage-3 tile.
        measured: (left, right) (P, k, k) calibration kernels in our orientation, or None.
        roi: (row0, row1, col0, col1) the measured kernel grid covers (None without calibration).
    """

    radii: torch.Tensor
    uniform: dict[str, torch.Tensor]
    start: dict[str, torch.Tensor]
    measured: tuple[torch.Tensor, torch.Tensor] | None = None
    roi: tuple[int, int, int, int] | None = None

    @property
    def sides(self) -> list[str]:
        """Focus sides of the layers, "f" (r >= 0) before "b"."""
        return sorted({"f" if r >= 0 else "b" for r in self.radii.tolist()}, reverse=True)


def prepare_kernels(cfg, h: int, w: int, measured_kernels: tuple | None = None,
                    kernel_roi: tuple[int, int, int, int] | None = None, device="cpu") -> KernelSetup:
    """Layer radii and the largest kernels of an (h, w) scene: parametric RDPD kernels
    (``cfg.max_radius``, ``cfg.kernel_beta``), or measured per-patch calibration kernels
    (left (P, k, k), right (P, k, k), our orientation, re-centred; P = grid rows x cols) on the
    grid over ``kernel_roi`` (default :func:`dpcli.optics.kernel_grid_roi`).

    Raises:
        InputError: the number of measured kernels does not match ``cfg.grid``.
    """
    from dpcli.errors import InputError
    from dpcli.optics import kernel_grid_roi

    radii = layer_radii(cfg.layers, cfg.max_radius, cfg.focus)
    if measured_kernels is None:
        uniform = {k: v.to(device) for k, v in parametric_max_kernels(cfg.max_radius, cfg.kernel_beta).items()}
        return KernelSetup(radii, uniform, {k: v[None] for k, v in uniform.items()})
    ml, mr = (to_tensor(k) for k in measured_kernels)
    n_patch = cfg.grid[0] * cfg.grid[1]
    if ml.ndim != 3 or ml.shape != mr.shape or ml.shape[-1] != ml.shape[-2]:
        raise InputError(f"measured kernels must be two (P, k, k) arrays of one shape, got "
                         f"{tuple(ml.shape)} and {tuple(mr.shape)}")
    if ml.shape[0] != n_patch:
        raise InputError(f"{ml.shape[0]} measured kernels do not match the {cfg.grid[0]}x"
                         f"{cfg.grid[1]} patch grid ({n_patch})")
    roi = kernel_roi or kernel_grid_roi(h, w, cfg.grid)
    tile_of = nearest_patch(h, w, cfg.grid, roi)  # stage 3's tiles span the whole view
    kmax = {k: v.to(device) for k, v in measured_max_kernels(ml, mr, cfg.max_radius).items()}
    start = {k: v[tile_of] for k, v in kmax.items()}
    # the field mean of the calibration itself: start repeats edge patches on a full view
    uniform = {k: v.mean(0) for k, v in kmax.items()}
    return KernelSetup(radii, uniform, start, (ml.to(device), mr.to(device)), tuple(roi))
