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
           "add_noise", "encode", "CANON_5D4_XYZ_TO_CAM", "IspConfig", "IspSample", "sample_isp",
           "camera_from_srgb", "unprocess", "process", "tone_curve", "inverse_tone_curve", "quantise",
           "compress", "decode"]


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
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def encode(x: torch.Tensor, output: str) -> tuple[torch.Tensor, int]:
    """Linear [0, 1] -> stored values and bit depth: sRGB 8/16-bit or linear 16-bit (quantised)."""
    x = x.clamp(0, 1)
    if output == "linear16":
        return quantise(x, 16), 16
    y = linear_to_srgb(x)
    if output == "srgb8":
        return quantise(y, 8), 8
    if output == "srgb16":
        return quantise(y, 16), 16
    raise ValueError(f"output must be srgb8, srgb16 or linear16, got {output!r}")


# --------------------------------------------------------------------------- DSLR raw pipeline
# Scene (linear sRGB primaries, scene-referred: highlights may exceed 1) -> unprocess to the
# camera's raw space -> [DP blur happens in linear light; a per-pixel 3x3 map commutes with it]
# -> per-view shot + read noise -> sensor clip at the white level (saturated highlights) ->
# white balance -> colour matrix -> clip -> tone curve -> 8/16-bit quantisation -> optional JPEG.
# Unprocessing after Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.

# Canon EOS 5D Mark IV (the DPDD camera): XYZ (D65) -> camera RGB, x 1e-4, the ColorMatrix2 of
# Adobe's DNG converter as tabulated in dcraw / LibRaw (adobe_coeff).
CANON_5D4_XYZ_TO_CAM = ((6446, -366, -864), (-4436, 12204, 2513), (-952, 2496, 6348))
_SRGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750),
                (0.0193339, 0.1191920, 0.9503041))


def camera_from_srgb(xyz_to_cam=CANON_5D4_XYZ_TO_CAM) -> np.ndarray:
    """3x3 linear sRGB -> camera RGB, rows normalised so white-balanced white stays white."""
    m = np.asarray(xyz_to_cam, np.float64) / 1e4 @ np.asarray(_SRGB_TO_XYZ)
    return m / m.sum(1, keepdims=True)


@dataclass
class IspConfig:
    """Ranges of the DSLR pipeline (per scene). Off-switches for the study: jpeg_prob=0, etc."""

    matrix_jitter: float = 0.3  # mix of the Canon matrix with identity + noise (other cameras)
    red_gain: tuple[float, float] = (1.9, 2.4)  # daylight white-balance gains (Brooks et al.)
    blue_gain: tuple[float, float] = (1.5, 1.9)
    contrast: tuple[float, float] = (0.0, 0.3)  # S-curve on top of sRGB (a picture style)
    bit_depth: int = 16  # 8 | 16
    jpeg_prob: float = 0.0  # JPEG-compress the inputs (never the target)
    jpeg_quality: tuple[int, int] = (80, 98)
    palette_prob: float = 0.0  # 256-colour palette (how the DPDD GIFs of the Canon dev scenes are stored)


@dataclass
class IspSample:
    """One drawn pipeline, recorded in the scene's JSON."""

    cam_from_srgb: tuple[tuple[float, ...], ...]  # 3x3 (unprocess); its inverse is the colour matrix
    wb_gains: tuple[float, float, float]
    contrast: float
    bit_depth: int
    jpeg_quality: int | None
    palette: bool

    def to_json(self) -> dict:
        return asdict(self)


def sample_isp(rng: np.random.Generator, cfg: IspConfig | None = None) -> IspSample:
    """Draw one DSLR pipeline: a colour matrix near the Canon 5D Mark IV's, daylight gains, tone."""
    cfg = cfg or IspConfig()
    base = camera_from_srgb()
    t = rng.uniform(0, cfg.matrix_jitter)
    m = (1 - t) * base + t * np.eye(3) + rng.normal(0, 0.02 * cfg.matrix_jitter, (3, 3))
    m = m / m.sum(1, keepdims=True)
    jpeg = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if rng.random() < cfg.jpeg_prob else None
    return IspSample(cam_from_srgb=tuple(tuple(float(v) for v in row) for row in m),
                     wb_gains=(float(rng.uniform(*cfg.red_gain)), 1.0, float(rng.uniform(*cfg.blue_gain))),
                     contrast=float(rng.uniform(*cfg.contrast)), bit_depth=int(cfg.bit_depth),
                     jpeg_quality=jpeg, palette=bool(rng.random() < cfg.palette_prob))


def _apply_matrix(x: torch.Tensor, m) -> torch.Tensor:
    """(3, H, W) or (B, 3, H, W) times a 3x3 matrix per pixel."""
    mt = torch.as_tensor(np.asarray(m), dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", mt, x)


def _gains(isp: IspSample, x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(isp.wb_gains, dtype=x.dtype, device=x.device).view(3, 1, 1)


def unprocess(x: torch.Tensor, isp: IspSample) -> torch.Tensor:
    """Linear sRGB (…, 3, H, W) -> camera raw (before white balance); no clipping."""
    return _apply_matrix(x, isp.cam_from_srgb) / _gains(isp, x)


def tone_curve(x: torch.Tensor, contrast: float) -> torch.Tensor:
    """Display linear [0, 1] -> encoded: the sRGB curve, then an S-curve mixed in by ``contrast``."""
    y = linear_to_srgb(x.clamp(0, 1))
    return (1 - contrast) * y + contrast * (3 * y * y - 2 * y ** 3) if contrast else y


def inverse_tone_curve(y: torch.Tensor, contrast: float, iters: int = 30) -> torch.Tensor:
    """Inverse of :func:`tone_curve` (monotone for contrast <= 1: bisection on the S-curve)."""
    from dpcli.optics.color import srgb_to_linear

    y = y.clamp(0, 1)
    if contrast:
        lo, hi = torch.zeros_like(y), torch.ones_like(y)
        for _ in range(iters):
            mid = (lo + hi) / 2
            f = (1 - contrast) * mid + contrast * (3 * mid * mid - 2 * mid ** 3)
            lo, hi = torch.where(f < y, mid, lo), torch.where(f < y, hi, mid)
        y = (lo + hi) / 2
    return srgb_to_linear(y)


def process(raw: torch.Tensor, isp: IspSample) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera raw (…, 3, H, W), already clipped at the white level 1 -> (display linear sRGB in
    [0, 1], tone-mapped encoded values): white balance, clip at the white level (saturated
    highlights turn white, not magenta, as in dcraw / camera JPEGs), colour matrix, clip, tone curve."""
    wb = (raw * _gains(isp, raw)).clamp(0, 1)
    lin = _apply_matrix(wb, np.linalg.inv(np.asarray(isp.cam_from_srgb))).clamp(0, 1)
    return lin, tone_curve(lin, isp.contrast)


def quantise(y: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Round encoded values to ``bit_depth`` bits."""
    q = float(2 ** bit_depth - 1)
    return torch.round(y.clamp(0, 1) * q) / q


def compress(y: torch.Tensor, isp: IspSample) -> torch.Tensor:
    """8-bit JPEG (``isp.jpeg_quality``) and/or 256-colour palette of encoded (3, H, W) values;
    unchanged when neither is drawn. Runs on the CPU (imagecodecs / Pillow)."""
    if isp.jpeg_quality is None and not isp.palette:
        return y
    arr = (y.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    if isp.jpeg_quality is not None:
        import imagecodecs

        arr = imagecodecs.jpeg8_decode(imagecodecs.jpeg8_encode(np.ascontiguousarray(arr),
                                                               level=isp.jpeg_quality))
    if isp.palette:
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr).quantize(256, dither=Image.Dither.NONE).convert("RGB"))
    return torch.from_numpy(arr.astype(np.float32) / 255).permute(2, 0, 1).to(y.device, y.dtype)


def decode(y: torch.Tensor, isp: IspSample) -> torch.Tensor:
    """Stored values -> camera raw: the inverse of tone curve, colour matrix and white balance
    (exact up to quantisation where nothing was clipped)."""
    lin = inverse_tone_curve(y, isp.contrast)
    return _apply_matrix(lin, isp.cam_from_srgb) / _gains(isp, lin)
