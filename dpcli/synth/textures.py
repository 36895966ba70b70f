"""Textures for synthetic scenes: crops of permissively licensed photos and procedural patterns.

Photos come from scikit-image's bundled data (``pip install dpdeblur[synth]``); each entry below
records its licence. Every texture is returned in LINEAR light, float32 (3, h, w) in [0, 1].
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.errors import DpError
from dpcli.optics.color import srgb_to_linear

__all__ = ["PHOTOS", "load_photo", "photo_texture", "pink_noise", "stripes", "text_like",
           "random_texture", "folder_texture", "spectral_noise", "stereo_motorcycle", "random_colour"]

# name -> licence (from skimage.data docstrings); all ship inside the scikit-image wheel
PHOTOS: dict[str, str] = {
    "astronaut": "public domain (NASA)",
    "coffee": "CC0 (Rachel Michetti)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "rocket": "public domain (SpaceX)",
    "hubble_deep_field": "public domain (NASA)",
    "camera": "CC0 (Lav Varshney)",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "immunohistochemistry": "no known copyright restrictions",
    "retina": "CC0",
    "clock": "public domain (Stefan van der Walt)",
}
# Middlebury 2014 (research use): used for training data only, never for files shipped in the repo
MOTORCYCLE_LICENCE = "Middlebury 2014 stereo benchmark (research use)"


def _skimage_data():
    try:
        import skimage.data as data
    except ImportError:  # pragma: no cover - depends on the environment
        raise DpError("dpdeblur synth needs scikit-image for its photo textures: "
                      "pip install 'dpdeblur[synth]'") from None
    return data


@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """A bundled photo as linear float32 (3, H, W); grey photos are repeated to 3 channels."""
    if name not in PHOTOS and name != "motorcycle":
        raise DpError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    data = _skimage_data()
    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    scale = 255.0 if img.dtype == np.uint8 else (65535.0 if img.dtype == np.uint16 else 1.0)
    srgb = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32) / scale)
    return srgb_to_linear(srgb).numpy()


@lru_cache(maxsize=1)
def stereo_motorcycle() -> tuple[np.ndarray, np.ndarray]:
    """Motorcycle left view (linear (3, H, W)) and its disparity (H, W), holes filled by nearest."""
    from scipy import ndimage

    _, _, disp = _skimage_data().stereo_motorcycle()
    disp = np.asarray(disp, dtype=np.float32)
    bad = ~np.isfinite(disp)
    if bad.any():
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        disp = disp[tuple(idx)]
    return load_photo("motorcycle"), disp


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A random linear RGB colour, (3,), log-uniform brightness."""
    hue = rng.dirichlet([1.0, 1.0, 1.0])
    sat = rng.uniform(0, 1)
    rgb = (1 - sat) / 3 + sat * hue
    return (rgb / rgb.max() * np.exp(rng.uniform(np.log(0.03), 0))).astype(np.float32)


def _colour_jitter(rng: np.random.Generator, tex: np.ndarray, grey: bool, tint: float = 0.3
                   ) -> np.ndarray:
    """Random tint (grey photos always; others with probability ``tint``), gains and contrast, linear."""
    if grey or rng.random() < tint:
        tex = tex.mean(0, keepdims=True) * (random_colour(rng)[:, None, None] * 0.7 + 0.3)
    gains = np.exp(rng.normal(0, 0.15, 3)).astype(np.float32)
    tex = tex * gains[:, None, None]
    gamma = np.exp(rng.normal(0, 0.25))
    return np.clip(tex, 0, 1) ** gamma


def photo_texture(rng: np.random.Generator, h: int, w: int, allow_research: bool = True
                  ) -> tuple[np.ndarray, str]:
    """A random crop (scaled, flipped, rotated) of a bundled photo: (3, h, w) linear, and its name."""
    names = list(PHOTOS) + (["motorcycle"] if allow_research else [])
    name = names[rng.integers(len(names))]
    src = torch.from_numpy(load_photo(name))
    if rng.random() < 0.5:
        src = src.transpose(1, 2)
    sh, sw = src.shape[1:]
    # random zoom: the crop covers between 30 % and 100 % of the photo's shorter side
    frac = rng.uniform(0.3, 1.0)
    ch = max(4, min(sh, int(round(frac * min(sh, sw) * h / max(h, w)))))
    cw = max(4, min(sw, int(round(ch * w / h))))
    ch = max(4, min(sh, int(round(cw * h / w))))
    y0 = rng.integers(0, sh - ch + 1)
    x0 = rng.integers(0, sw - cw + 1)
    crop = _resize(src[:, y0 : y0 + ch, x0 : x0 + cw], h, w)
    if rng.random() < 0.5:
        crop = crop.flip(-1)
    grey = name in ("camera", "brick", "grass", "gravel", "clock")
    return _colour_jitter(rng, crop.numpy(), grey).astype(np.float32), name


def _two_colour(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    a, b = random_colour(rng), random_colour(rng)
    return (a[:, None, None] * (1 - t[None]) + b[:, None, None] * t[None]).astype(np.float32)


def spectral_noise(rng: np.random.Generator, h: int, w: int, exponent: float) -> np.ndarray:
    """Gaussian random field (h, w) with amplitude spectrum 1/f^exponent, zero mean, unit std."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f**exponent  # amplitude 1/f^e
    spec[0, 0] = 0
    t = np.fft.irfft2(spec, s=(h, w))
    return (t - t.mean()) / (t.std() + 1e-8)


def pink_noise(rng: np.random.Generator, h: int, w: int, exponent: float | None = None
               ) -> np.ndarray:
    """Noise with amplitude spectrum 1/f^exponent (natural images: ~1), between two random colours."""
    exponent = rng.uniform(0.8, 1.6) if exponent is None else exponent
    t = spectral_noise(rng, h, w, exponent)
    t = 1 / (1 + np.exp(-t * rng.uniform(0.8, 2.5)))
    return _two_colour(rng, t)


def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Oriented stripes (sine to square wave) of random period 3-40 px, two random colours."""
    theta = rng.uniform(0, np.pi)
    period = np.exp(rng.uniform(np.log(3), np.log(40)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period
    t = np.tanh(np.sin(phase + rng.uniform(0, 2 * np.pi)) * rng.uniform(1, 8)) * 0.5 + 0.5
    return _two_colour(rng, t)


def text_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Lines of glyph-like strokes (thin high-contrast edges), like printed text."""
    t = np.zeros((h, w), np.float32)
    size = int(rng.integers(6, 22))
    stroke = max(1, size // 7)
    y = int(rng.integers(0, size))
    while y + size < h:
        x = int(rng.integers(0, size))
        while x + size < w:
            gw = int(rng.integers(size // 2, size + 1))
            if rng.random() < 0.15:  # word gap
                x += gw
                continue
            for _ in range(int(rng.integers(1, 4))):
                if rng.random() < 0.5:  # vertical stroke
                    sx = x + int(rng.integers(0, max(1, gw - stroke)))
                    t[y : y + size, sx : sx + stroke] = 1
                else:  # horizontal stroke
                    sy = y + int(rng.integers(0, max(1, size - stroke)))
                    t[sy : sy + stroke, x : x + gw] = 1
            x += gw + stroke
        y += int(size * rng.uniform(1.3, 1.8))
    return _two_colour(rng, t)


def folder_texture(rng: np.random.Generator, h: int, w: int, files: Sequence[Path],
                   max_blurred: float = 0.2) -> tuple[np.ndarray, str]:
    """A sharp crop of a photo from a folder (:mod:`dpcli.synth.photos`), natural colours kept
    (mild gains and contrast only): (3, h, w) linear, and ``photo:<file name>``."""
    from dpcli.synth.photos import sharp_photo_crop

    crop = sharp_photo_crop(rng, files, h, w, max_blurred=max_blurred)
    return _colour_jitter(rng, crop.image, False, tint=0.0).astype(np.float32), f"photo:{crop.path.name}"


def soften(rng: np.random.Generator, tex: np.ndarray, scale: tuple[float, float] = (1.5, 3.0)) -> np.ndarray:
    """A texture soft in itself, as an upscaled or softly rendered photo is: resampled down by a
    factor drawn log-uniformly from ``scale`` (antialiased) and back up (bilinear), so its finest
    detail is that many px wide. (C, h, w) -> (C, h, w) float32."""
    h, w = tex.shape[-2:]
    f = float(np.exp(rng.uniform(*np.log(scale))))
    small = _resize(torch.from_numpy(np.ascontiguousarray(tex, np.float32)), max(2, round(h / f)),
                    max(2, round(w / f)))
    return F.interpolate(small[None], size=(h, w), mode="bilinear", align_corners=False)[0].numpy()


def random_texture(rng: np.random.Generator, h: int, w: int, photo_prob: float = 0.6,
                   allow_research: bool = True, photo_files: Sequence[Path] = (),
                   folder_prob: float = 0.85, max_blurred: float = 0.2) -> tuple[np.ndarray, str]:
    """Photo crop (probability ``photo_prob``; from ``photo_files`` with probability
    ``folder_prob`` when given, else a bundled photo) or a procedural texture: (3, h, w) linear, kind."""
    if rng.random() < photo_prob:
        if photo_files and rng.random() < folder_prob:
            return folder_texture(rng, h, w, photo_files, max_blurred)
        return photo_texture(rng, h, w, allow_research)
    kind = ("pink_noise", "stripes", "text_like", "flat")[rng.choice(4, p=[0.45, 0.2, 0.25, 0.1])]
    if kind == "pink_noise":
        return pink_noise(rng, h, w), kind
    if kind == "stripes":
        return stripes(rng, h, w), kind
    if kind == "text_like":
        return text_like(rng, h, w), kind
    tex = np.broadcast_to(random_colour(rng)[:, None, None], (3, h, w)).astype(np.float32)
    return tex + pink_noise(rng, h, w) * 0.05, kind
