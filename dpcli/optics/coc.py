"""Thin-lens circle of confusion: signed blur radius in pixels from camera settings and depth.

For a lens of focal length f focused at distance s with aperture diameter A = f / N, a point at
depth d images to a blur disk of diameter ``c = A * f * (d - s) / (d * (s - f))`` on the sensor
(signed: positive behind the focal plane, docs/CONVENTIONS.md). The defocus-map radius in px is
``c / 2 / pixel_pitch``.
"""
from __future__ import annotations

import torch

__all__ = ["coc_radius", "depth_for_radius", "coc_scale"]


def coc_scale(focal_length_mm: float, f_number: float, focus_distance_m: float,
              pixel_pitch_um: float) -> float:
    """Radius in px of a point at infinity: ``r(d) = scale * (1 - s / d)``."""
    f = focal_length_mm * 1e-3
    s = float(focus_distance_m)
    if not (f > 0 and f_number > 0 and pixel_pitch_um > 0):
        raise ValueError("focal length, f-number and pixel pitch must be positive")
    if s <= f:
        raise ValueError(f"focus distance {s} m must exceed the focal length {f} m")
    aperture = f / f_number
    return aperture * f / (s - f) / 2 / (pixel_pitch_um * 1e-6)


def coc_radius(depth: torch.Tensor, focal_length_mm: float = 50.0, f_number: float = 2.0,
               focus_distance_m: float = 2.0, pixel_pitch_um: float = 5.36) -> torch.Tensor:
    """Signed CoC radius in px for scene depths.

    Args:
        depth: (…) distances in metres (> 0; ``inf`` allowed for the far background).
        focal_length_mm, f_number, focus_distance_m: thin-lens camera settings.
        pixel_pitch_um: sensor pixel pitch at the image's resolution (multiply it by the
            downscale factor when the image was resized).

    Returns:
        (…) radius in px; 0 at the focus distance, positive behind it, tends to
        ``coc_scale(...)`` at infinity and to -inf toward the lens.

    Example:
        >>> coc_radius(torch.tensor([1.0, 2.0, float("inf")]), 50, 2.0, 2.0, 5.36).round()
        tensor([-60.,   0.,  60.])
    """
    scale = coc_scale(focal_length_mm, f_number, focus_distance_m, pixel_pitch_um)
    depth = torch.as_tensor(depth, dtype=torch.float32) if not torch.is_tensor(depth) else depth
    return scale * (1 - focus_distance_m / depth)


def depth_for_radius(radius: torch.Tensor, focal_length_mm: float = 50.0, f_number: float = 2.0,
                     focus_distance_m: float = 2.0, pixel_pitch_um: float = 5.36) -> torch.Tensor:
    """Inverse of :func:`coc_radius`: depth in metres (inf where radius >= the far limit)."""
    scale = coc_scale(focal_length_mm, f_number, focus_distance_m, pixel_pitch_um)
    radius = torch.as_tensor(radius, dtype=torch.float32) if not torch.is_tensor(radius) else radius
    rest = 1 - radius / scale
    return torch.where(rest > 0, focus_distance_m / rest.clamp_min(1e-12),
                       torch.full_like(radius, float("inf")))
