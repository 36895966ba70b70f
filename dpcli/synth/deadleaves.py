"""Dead-leaves images: opaque discs of random colour and size dropped on top of each other, the
image model that camera-sharpness charts use (its edges are sharp and its sizes scale-invariant).

Unlike the training scenes (:mod:`dpcli.synth.scene`: photo-textured layers), the discs here are
flat colours with a gentle linear shading and no photo in them: rendered 4x larger and reduced in
linear light, so every edge is sharp at pixel scale and anti-aliased.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dead_leaves"]


def dead_leaves(size: int = 256, seed: int = 0, r_min: float = 2.0, r_max: float = 120.0,
                supersample: int = 4) -> np.ndarray:
    """A (3, size, size) float32 linear-light dead-leaves image in [0, 1].

    Disc radii (px at the output scale) follow p(r) ~ r^-3 between ``r_min`` and ``r_max`` (the
    scale-invariant law); discs are painted back to front until the canvas is covered.
    """
    rng = np.random.default_rng(seed)
    n = size * supersample
    canvas = np.zeros((3, n, n), np.float32)
    covered = np.zeros((n, n), bool)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    lo, hi = r_min * supersample, r_max * supersample
    for _ in range(20000):
        u = rng.random()
        r = 1.0 / np.sqrt(1.0 / lo**2 - u * (1.0 / lo**2 - 1.0 / hi**2))  # inverse CDF of r^-3
        cy, cx = rng.uniform(-r, n + r, 2)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, n)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, n)
        if y0 >= y1 or x0 >= x1:
            continue
        sy, sx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        disc = (sy**2 + sx**2 <= r * r) & ~covered[y0:y1, x0:x1]  # painted from the front back
        if not disc.any():
            continue
        grey, tint = rng.uniform(0.05, 0.95), rng.normal(0.0, 0.12, 3)  # muted colours, as in photos
        colour = np.clip(grey + tint - tint.mean(), 0.0, 1.0) ** 2.2  # uniform in sRGB-like values
        slope = rng.normal(0.0, 0.15, 2) / max(r, 1.0)
        shade = np.clip(1.0 + slope[0] * sy + slope[1] * sx, 0.3, 1.7)
        canvas[:, y0:y1, x0:x1][:, disc] = (colour[:, None] * shade[disc][None]).astype(np.float32)
        covered[y0:y1, x0:x1] |= disc
        if covered.all():
            break
    out = canvas.reshape(3, size, supersample, size, supersample).mean(axis=(2, 4))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
