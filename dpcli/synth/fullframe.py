"""Full-frame scenes: one natural photo edge to edge, with a pseudo-depth from its own segmentation.

Real photographs are dense texture edge to edge, unlike dead-leaves shapes on a flat background.
A full-frame scene takes one sharp photo crop, splits it into segments (scikit-image's
felzenszwalb graph segmentation: segment borders follow the photo's own edges, where real depth
discontinuities usually are), gives every segment a smooth depth and groups the segments into a
few depth layers that :func:`dpcli.optics.render_layers` composites with occlusion:

* a smooth random inverse-depth field (a vertical ramp, near at the bottom like a ground plane,
  with probability ``ramp_prob``, plus low-frequency noise) gives each segment its depth at its
  centroid, plus a per-segment jump (the discontinuities);
* segments are grouped by depth rank into ``layers`` layers, back to front; inside a layer the
  depth follows the field's slope (slanted surfaces, not cardboard cut-outs) and is continuous,
  so every discontinuity is an occlusion boundary between layers; the back layer is
  opaque everywhere, its hidden part filled from its nearest visible pixels and smoothed, so a
  blurred foreground edge reveals plausible background instead of black.

The all-in-focus image is the photo itself, and the defocus map is the front-most layer's radius.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.synth.textures import spectral_noise

__all__ = ["segment_photo", "pseudo_depth", "fullframe_layers"]


def segment_photo(rng: np.random.Generator, image: np.ndarray, max_side: int = 384) -> np.ndarray:
    """Segment labels (H, W) int of a linear (3, H, W) photo (felzenszwalb on its sRGB encoding,
    at most ``max_side`` px, labels upsampled by nearest neighbour)."""
    from skimage.segmentation import felzenszwalb

    from dpcli.optics.color import linear_to_srgb

    h, w = image.shape[-2:]
    x = torch.as_tensor(image)
    s = min(1.0, max_side / max(h, w))
    if s < 1:
        x = F.interpolate(x[None], scale_factor=s, mode="bilinear", antialias=True,
                          align_corners=False)[0]
    srgb = linear_to_srgb(x.clamp(0, 1)).permute(1, 2, 0).numpy()
    area = srgb.shape[0] * srgb.shape[1]
    size = min(1.0, float(np.sqrt(area)) / 384)  # smaller images: finer segments, as many of them
    labels = felzenszwalb(srgb, scale=float(rng.uniform(150, 600)) * size, sigma=0.8,
                          min_size=max(16, int(area * rng.uniform(0.002, 0.01))))
    if s < 1:
        lab = torch.from_numpy(labels.astype(np.int64))[None, None].float()
        labels = F.interpolate(lab, size=(h, w), mode="nearest")[0, 0].long().numpy()
    return labels


def _smooth_field(rng: np.random.Generator, h: int, w: int, ramp_prob: float) -> np.ndarray:
    """Smooth random field in [0, 1] (H, W): 1 = near. A bottom-near ramp and/or low-frequency noise."""
    noise = spectral_noise(rng, h, w, 2.5)  # very smooth
    noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-8)
    if rng.random() < ramp_prob:
        yy = np.linspace(0, 1, h, dtype=np.float64)[:, None] * np.ones((1, w))
        mix = rng.uniform(0.5, 0.9)
        field = mix * yy + (1 - mix) * noise
    else:
        field = noise
    return ((field - field.min()) / max(float(np.ptp(field)), 1e-8)).astype(np.float32)


def pseudo_depth(rng: np.random.Generator, labels: np.ndarray, n_layers: int, ramp_prob: float = 0.6,
                 jump: float = 0.25, slant: tuple[float, float] = (0.0, 1.0)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel nearness t in [0, 1] (H, W) (1 = nearest) and depth layer (H, W) int (0 = farthest).

    Every segment gets t = field(centroid) + N(0, ``jump``) (a depth discontinuity at its
    border); the segments, ordered by it, are split into ``n_layers`` groups of consecutive
    depth. Inside a layer the depth is continuous: the layer's mean level plus ``lambda`` x the
    field's variation (a slanted surface, lambda ~ U(``slant``) per layer), so every depth jump
    lies between layers, where the renderer handles occlusion (a jump inside one layer would be a
    space-varying blur without occlusion: dark halos).
    """
    h, w = labels.shape
    field = _smooth_field(rng, h, w, ramp_prob)
    ids, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(h, w)
    n = len(ids)
    count = np.bincount(inv.ravel(), minlength=n).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    cy = np.bincount(inv.ravel(), yy.ravel(), n) / count
    cx = np.bincount(inv.ravel(), xx.ravel(), n) / count
    f_c = field[np.clip(cy.round().astype(int), 0, h - 1), np.clip(cx.round().astype(int), 0, w - 1)]
    seg_t = f_c + rng.normal(0, jump, n)
    seg_group = np.empty(n, np.int64)
    for k, members in enumerate(np.array_split(np.argsort(seg_t), min(n_layers, n))):
        seg_group[members] = k
    group = seg_group[inv]
    g = int(group.max()) + 1
    area = np.bincount(seg_group, count, g)
    level = np.bincount(seg_group, seg_t * count, g) / area
    f_mean = np.bincount(group.ravel(), field.ravel(), g) / area
    lam = rng.uniform(*slant, g)
    t = level[group] + lam[group] * (field - f_mean[group])
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    return t.astype(np.float32), group


def _fill_hidden(color: np.ndarray, mask: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """``color`` (3, H, W) with the pixels outside ``mask`` (H, W) filled from the nearest pixel
    inside it, the filled part smoothed (it is only seen through blurred foreground edges)."""
    from scipy import ndimage

    if mask.all() or not mask.any():
        return color
    idx = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    filled = color[:, idx[0], idx[1]]
    smooth = np.stack([ndimage.gaussian_filter(c, sigma) for c in filled])
    return np.where(mask[None], color, smooth).astype(np.float32)


def fullframe_layers(rng: np.random.Generator, image: np.ndarray, q_far: float, q_near: float,
                     layers: tuple[int, int] = (3, 8), ramp_prob: float = 0.6) -> list[dict]:
    """Depth layers of one photo (3, H, W) linear, back to front, in the scene layer format of
    :func:`dpcli.synth.scene.generate_layers` (colour, alpha, inverse depth map q, meta).

    Inverse depth q = q_far + (q_near - q_far) * t^gamma for the nearness t of :func:`pseudo_depth`.
    """
    h, w = image.shape[-2:]
    labels = segment_photo(rng, image)
    n_layers = int(rng.integers(layers[0], layers[1] + 1))
    t, group = pseudo_depth(rng, labels, n_layers, ramp_prob)
    gamma = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    q = (q_far + (q_near - q_far) * t**gamma).astype(np.float32)
    out = []
    for k in np.unique(group):
        mask = group == k
        first = not out
        color = _fill_hidden(image, mask) if first else image
        alpha = np.ones((1, h, w), np.float32) if first else mask[None].astype(np.float32)
        qk = np.where(mask, q, q[mask].mean()).astype(np.float32)
        out.append(dict(color=color.astype(np.float32), alpha=alpha, q=qk,
                        meta=dict(kind="segment_layer", coverage=round(float(mask.mean()), 4),
                                  q=[float(q[mask].min()), float(q[mask].max())],
                                  q_median=float(np.median(q[mask])))))
    return out
