"""Camera models for synthetic DP data: blur range, lens, noise, vignetting and output encoding.

Presets span a DSLR like the Canon EOS 5D Mark IV of DPDD (radii up to ~25-40 px at
1680x1120) and a smartphone like the Pixel 4 (radii up to ~8-10 px at 2016x1512). Radii scale
with the rendered width unless ``scale_radii=False`` (then a scene is a crop at native resolution).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from dpcli.optics.color import linear_to_srgb

__all__ = ["CameraPreset", "PRESETS", "CameraSample", "sample_camera", "apply_vignetting",
           "add_noise", "encode"]


@dataclass(frozen=True)
class CameraPreset:
    """Ranges one camera type is sampled from (radii in px at ``native_width``)."""

    name: str
    native_width: int
    max_radius: tuple[float, float]  # the scene's largest |radius| is drawn from this range
    focal_length_mm: tuple[float, float]
    pixel_pitch_um: float  # at native_width
    shot_noise: tuple[float, float]  # Poisson gain a: var = a * x + b (per DP view, linear)
    read_noise: tuple[float, float]  # Gaussian std sqrt(b)
    output: str  # "srgb16" (DPDD-like) | "srgb8" | "linear16" (Pixel-like)
    focus_modes: tuple[str, ...] = ("front", "middle", "back")
    focus_probs: tuple[float, ...] = (0.4, 0.45, 0.15)


PRESETS: dict[str, CameraPreset] = {
    "dslr": CameraPreset("dslr", 1680, (18.0, 36.0), (35.0, 85.0), 5.36 * 4,
                         (1e-4, 2e-3), (5e-4, 4e-3), "srgb16"),
    "phone": CameraPreset("phone", 2016, (5.0, 10.0), (4.38, 4.38), 1.4 * 2,
                          (5e-4, 6e-3), (1e-3, 6e-3), "linear16",
                          focus_probs=(0.7, 0.3, 0.0)),  # Pixel 4 scenes: mostly front focus
}


@dataclass
class CameraSample:
    """One drawn camera: what a scene's JSON records."""

    preset: str
    width: int
    radius_scale: float  # px at this width per px at native width
    max_radius: float  # px at this width
    focus_mode: str
    focal_length_mm: float
    pixel_pitch_um: float  # at this width
    shot_noise: float
    read_noise: float
    exposure: float
    wb_gains: tuple[float, float, float]
    vignetting: float
    edge_asymmetry: float
    output: str

    def to_json(self) -> dict:
        return asdict(self)

    def f_number(self, focus_distance_m: float) -> float:
        """f-number that makes ``max_radius`` the blur of a point at infinity (thin lens)."""
        f = self.focal_length_mm * 1e-3
        return float(f * f / ((focus_distance_m - f) * 2 * self.max_radius
                              * self.pixel_pitch_um * 1e-6))


def sample_camera(rng: np.random.Generator, camera: str, width: int, scale_radii: bool = True,
                  noise: bool = True, vignetting: bool | None = None,
                  edge_asymmetry: bool | None = None) -> CameraSample:
    """Draw a camera for one scene. ``camera``: "dslr", "phone" or "mixed" (either, 50/50)."""
    if camera == "mixed":
        camera = "dslr" if rng.random() < 0.5 else "phone"
    if camera not in PRESETS:
        raise ValueError(f"camera must be dslr, phone or mixed, got {camera!r}")
    p = PRESETS[camera]
    scale = width / p.native_width if scale_radii else 1.0
    mode = str(rng.choice(p.focus_modes, p=p.focus_probs))
    vig = rng.uniform(0.05, 0.3) if (vignetting if vignetting is not None else rng.random() < 0.3) else 0.0
    asym = rng.uniform(0.05, 0.25) if edge_asymmetry else 0.0
    return CameraSample(
        preset=camera, width=width, radius_scale=scale,
        max_radius=float(rng.uniform(*p.max_radius) * scale), focus_mode=mode,
        focal_length_mm=float(rng.uniform(*p.focal_length_mm)),
        pixel_pitch_um=p.pixel_pitch_um / scale,
        shot_noise=float(np.exp(rng.uniform(*np.log(p.shot_noise)))) if noise else 0.0,
        read_noise=float(np.exp(rng.uniform(*np.log(p.read_noise)))) if noise else 0.0,
        exposure=float(np.exp(rng.uniform(np.log(0.6), np.log(1.3)))),
        wb_gains=tuple(float(g) for g in np.exp(rng.normal(0, 0.12, 3))),
        vignetting=float(vig), edge_asymmetry=float(asym), output=p.output,
    )


def apply_vignetting(left: torch.Tensor, right: torch.Tensor, strength: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """DP vignetting: common radial falloff plus opposite left/right horizontal ramps.

    (…, H, W) each. Each photodiode sees half the pupil, so the left view is brighter toward one
    side of the frame and the right view toward the other (what the Pixel 4 white-sheet ratio
    corrects).
    """
    if strength <= 0:
        return left, right
    h, w = left.shape[-2:]
    y = torch.linspace(-1, 1, h, dtype=left.dtype, device=left.device).view(-1, 1)
    x = torch.linspace(-1, 1, w, dtype=left.dtype, device=left.device).view(1, -1)
    radial = 1 - strength * 0.5 * (x**2 + y**2)
    return left * radial * (1 + strength * x), right * radial * (1 - strength * x)


def add_noise(x: torch.Tensor, shot: float, read: float, generator: torch.Generator
              ) -> torch.Tensor:
    """Poisson-Gaussian noise (heteroscedastic Gaussian approximation): var = shot * x + read^2."""
    if shot <= 0 and read <= 0:
        return x
    std = torch.sqrt(shot * x.clamp_min(0) + read**2)
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def encode(x: torch.Tensor, output: str) -> tuple[torch.Tensor, int]:
    """Linear [0, 1] -> stored values and bit depth: sRGB 8/16-bit or linear 16-bit (quantised)."""
    x = x.clamp(0, 1)
    if output == "linear16":
        return torch.round(x * 65535) / 65535, 16
    y = linear_to_srgb(x)
    if output == "srgb8":
        return torch.round(y * 255) / 255, 8
    if output == "srgb16":
        return torch.round(y * 65535) / 65535, 16
    raise ValueError(f"output must be srgb8, srgb16 or linear16, got {output!r}")
