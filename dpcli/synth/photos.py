"""Natural photographs for synthetic scenes: photo folders, the Debian photo packages, sharp crops.

Any folder of photos (``dpdeblur synth --photos DIR``, ``dpdeblur train --photos DIR``) is read at
run time from where it lies; nothing is copied into the repository. ``--photos debian`` names the
photographs of these freely licensed Debian packages (``apt-get install lomiri-wallpapers-16.04
lomiri-wallpapers-20.04 mate-backgrounds``, 73 MB installed), listed one by one below because the
same packages also hold artwork (flat gradients, logos) that is no photograph:

* lomiri-wallpapers-16.04 / -20.04 (Ubuntu's wallpaper contest photos): CC-BY-4.0,
  CC-BY-SA-3.0/4.0 and CC0-1.0 per file (``/usr/share/doc/lomiri-wallpapers-16.04/copyright``);
  the author is in each file name.
* mate-backgrounds, ``nature/``: GPL-2+ (``/usr/share/doc/mate-backgrounds/copyright``).

Photos are used in LINEAR light (sRGB decoded). Wallpapers often have a blurred (bokeh)
background, and a blurred texture in a training target teaches a deblurring net to keep blur,
so a crop is only used when it is itself sharp (:func:`blurred_fraction`).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.errors import InputError
from dpcli.optics.color import srgb_to_linear

__all__ = ["DEBIAN_PHOTOS", "PHOTO_SUFFIXES", "list_photos", "load_photo_file", "blurred_fraction",
           "sharp_photo_crop", "PhotoCrop"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")

# package -> (glob patterns of its photographs, licence); artwork files of the packages are left out
DEBIAN_PHOTOS: dict[str, tuple[tuple[str, ...], str]] = {
    "lomiri-wallpapers-16.04": (
        tuple(f"/usr/share/backgrounds/{n}" for n in (
            "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
            "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
            "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg",
            "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
            "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
            "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg",
            "umang_by_Abhishek_Mudgal.jpg")),
        "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 per file"),
    "lomiri-wallpapers-20.04": (
        tuple(f"/usr/share/backgrounds/{n}" for n in (
            "Infinite-Sea_by_Aury88.jpg", "Kleiber_by_Lukas_Baubkus.jpg",
            "Painting-Colors_by__herobrine7gamer.jpg")),
        "CC-BY-SA-3.0"),
    "mate-backgrounds": (("/usr/share/backgrounds/mate/nature/*.jpg",), "GPL-2+"),
}
DEBIAN_INSTALL = "apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds"


def _debian_files() -> list[Path]:
    files: list[Path] = []
    for patterns, _ in DEBIAN_PHOTOS.values():
        for pattern in patterns:
            files += [Path(p) for p in sorted(glob.glob(pattern))]
    return files


@lru_cache(maxsize=16)
def list_photos(sources: tuple[str, ...]) -> tuple[Path, ...]:
    """Photo files of ``sources``: folders (searched recursively), single files, or ``debian``.

    Raises :class:`~dpcli.errors.InputError` naming the source when it holds no photo.
    """
    files: list[Path] = []
    for src in sources:
        if str(src).lower() == "debian":
            found = _debian_files()
            if not found:
                raise InputError(f"no Debian photo package is installed ({DEBIAN_INSTALL})", "--photos debian")
        else:
            path = Path(os.path.expanduser(str(src)))
            if path.is_file():
                found = [path]
            elif path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
                               and p.is_file() and "_defocus" not in p.stem)
            else:
                raise InputError("photo folder not found", path)
            if not found:
                raise InputError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in this folder", path)
        files += found
    return tuple(dict.fromkeys(files))  # keep order, drop duplicates


@lru_cache(maxsize=64)
def load_photo_file(path: Path, max_side: int = 1600) -> np.ndarray:
    """A photo as sRGB-encoded uint8 (3, H, W), downscaled so its longer side is <= ``max_side``.

    Kept encoded (4x less memory than float); :func:`sharp_photo_crop` decodes crops to linear.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale (fast)
            im = ImageOps.exif_transpose(im).convert("RGB")
            s = max_side / max(im.size)
            if s < 1:
                im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))),
                               Image.Resampling.LANCZOS)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read this photo ({exc})", path) from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _grad_energy(g: torch.Tensor) -> torch.Tensor:
    """Squared gradient magnitude (forward differences) of (B, 1, H, W), same size (zero padded)."""
    dx = g[..., :, 1:] - g[..., :, :-1]
    dy = g[..., 1:, :] - g[..., :-1, :]
    return F.pad(dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2, (0, 1, 0, 1))


def blurred_fraction(image: torch.Tensor, tile: int = 32, ratio: float = 0.3,
                     flat: float = 1e-4) -> float:
    """Share of the textured tiles of ``image`` (C, H, W) that look blurred; 0 = sharp everywhere.

    Per ``tile`` px tile: the gradient energy at full resolution over the gradient energy of the
    2x-downsampled tile (each in its own pixel units). Blur removes the top octave, so the ratio
    falls to 0.25 (a smooth ramp); sharp natural texture gives 0.4-0.9. Gaussian blur of sigma
    1 px brings 30-50 % of a sharp photo's tiles under ``ratio`` = 0.3, sigma 2 px all of them
    (scikit-image's photos). Flat tiles (energy < ``flat``) count as neither.
    """
    g = image.float().mean(0, keepdim=True)[None]
    tile = min(tile, min(g.shape[-2:]) // 2 * 2)
    if tile < 4:  # too small to judge
        return 0.0
    e = F.avg_pool2d(_grad_energy(g), tile)
    ed = F.avg_pool2d(_grad_energy(F.avg_pool2d(g, 2)), tile // 2)
    n = min(e.shape[-2], ed.shape[-2]), min(e.shape[-1], ed.shape[-1])
    e, ed = e[..., :n[0], :n[1]], ed[..., :n[0], :n[1]]
    textured = ed > flat
    if not bool(textured.any()):
        return 0.0
    return float(((e / ed.clamp_min(1e-12) < ratio) & textured).sum() / textured.sum())


@dataclass
class PhotoCrop:
    """A drawn crop: linear (3, h, w) float32, the file, and its blurred-tile share."""

    image: np.ndarray
    path: Path
    blurred: float


def sharp_photo_crop(rng: np.random.Generator, files: Sequence[Path], h: int, w: int,
                     max_blurred: float = 0.2, tries: int = 8, zoom: tuple[float, float] = (0.25, 1.0)
                     ) -> PhotoCrop:
    """A random crop (zoom, flip, transpose) of a random photo resized to (h, w), kept only when
    sharp at that size (<= ``max_blurred`` blurred tiles); after ``tries`` the sharpest one seen.

    ``zoom``: the crop's shorter side as a fraction of the photo's (downscaling sharpens).
    """
    best: PhotoCrop | None = None
    for _ in range(tries):
        path = files[int(rng.integers(len(files)))]
        src = torch.from_numpy(load_photo_file(path))
        if rng.random() < 0.5:
            src = src.transpose(1, 2)
        sh, sw = src.shape[1:]
        frac = rng.uniform(*zoom)
        # crop of aspect w/h covering ``frac`` of the photo's limiting side
        scale = min(sh / h, sw / w) * frac
        ch, cw = max(2, min(sh, int(round(h * scale)))), max(2, min(sw, int(round(w * scale))))
        y0, x0 = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
        crop = src[:, y0:y0 + ch, x0:x0 + cw].float() / 255.0
        crop = F.interpolate(crop[None], size=(h, w), mode="bilinear", align_corners=False,
                             antialias=True)[0].clamp(0, 1)
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        blurred = blurred_fraction(crop, tile=max(8, min(32, h // 4, w // 4) // 2 * 2))
        if best is None or blurred < best.blurred:
            best = PhotoCrop(crop, path, blurred)
        if blurred <= max_blurred:
            break
    assert best is not None
    return PhotoCrop(srgb_to_linear(torch.as_tensor(best.image)).numpy().astype(np.float32),
                     best.path, best.blurred)
