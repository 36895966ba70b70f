"""Make the pictures of docs/physics.md (kernels at several radii and signs; a rendered scene).

    python docs/make_physics_figures.py          # writes docs/img/*.png and prints the tables

Pure numpy grids written with dpcli.io (no plotting library needed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.io.images import write_image
from dpcli.optics import dp_kernels, kernel_centroid, linear_to_srgb, render_layers, translating_disk_kernels

OUT = Path(__file__).parent / "img"
CELL = 96


def _cell(k: torch.Tensor) -> np.ndarray:
    """A kernel scaled to its max, nearest-neighbour enlarged into a CELL x CELL grey tile."""
    k = k / k.max().clamp_min(1e-12)
    n = k.shape[-1]
    scale = max(1, CELL // n)
    big = k.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    tile = torch.zeros(CELL, CELL)
    o = (CELL - big.shape[0]) // 2
    tile[o : o + big.shape[0], o : o + big.shape[1]] = big
    return tile.numpy()


def _grid(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Tiles (C, h, w) or (h, w) -> one (3, H, W) image with white gaps."""
    def rgb(t):
        t = np.asarray(t, np.float32)
        return np.repeat(t[None], 3, 0) if t.ndim == 2 else t

    rows = [[rgb(t) for t in row] for row in rows]
    h = max(t.shape[1] for row in rows for t in row)
    lines = []
    for row in rows:
        parts = []
        for t in row:
            pad = np.ones((3, h, t.shape[2]), np.float32)
            pad[:, : t.shape[1]] = t
            parts += [pad, np.ones((3, h, gap), np.float32)]
        lines += [np.concatenate(parts[:-1], 2)]
    w = max(l.shape[2] for l in lines)
    out = []
    for l in lines:
        pad = np.ones((3, l.shape[1], w), np.float32)
        pad[:, :, : l.shape[2]] = l
        out += [pad, np.ones((3, gap, w), np.float32)]
    return np.concatenate(out[:-1], 1)


def kernel_figure() -> None:
    radii = torch.tensor([0.0, 2.0, 4.5, 8.0, 15.0, -8.0])
    left, right = dp_kernels(radii, size=31)
    tl, tr = translating_disk_kernels(radii, size=31)
    rows = [[_cell(left[i]) for i in range(len(radii))],
            [_cell(right[i]) for i in range(len(radii))],
            [_cell((left[i] + right[i]) / 2) for i in range(len(radii))],
            [_cell(tl[i]) for i in range(len(radii))]]
    write_image(OUT / "kernels.png", _grid(rows), 8, overwrite=True)
    print("radius  left-centroid-x  right-centroid-x  gap/|r| (RDPD)  gap/|r| (translating disk)")
    for i, r in enumerate(radii.tolist()):
        cl, cr = kernel_centroid(left[i])[0], kernel_centroid(right[i])[0]
        dl, dr = kernel_centroid(tl[i])[0], kernel_centroid(tr[i])[0]
        gap = float(cl - cr) / abs(r) if r else float("nan")
        gap_d = float(dl - dr) / abs(r) if r else float("nan")
        print(f"{r:6.1f} {float(cl):16.2f} {float(cr):17.2f} {gap:15.3f} {gap_d:26.3f}")


def _defocus_rgb(d: torch.Tensor, scale: float) -> np.ndarray:
    """Signed radius -> red (behind focus) / blue (in front), black in focus."""
    t = (d[0] / scale).clamp(-1, 1)
    return torch.stack([t.clamp_min(0), torch.zeros_like(t), (-t).clamp_min(0)]).sqrt().numpy()


def scene_figure() -> None:
    from dpcli.synth import SceneConfig, render_scene

    cfg = SceneConfig(height=240, width=360, camera="dslr", scale_radii=False, max_radius=14.0,
                      focus_mode="middle", noise=False, vignetting=False, allow_research=False)
    s = render_scene(11, cfg)
    diff = ((s.linear["left"] - s.linear["right"]).abs() * 4).clamp(0, 1).mean(0).numpy()
    d = _defocus_rgb(s.defocus, float(s.defocus.abs().max()))
    rows = [[s.left.numpy(), s.right.numpy(), s.combined.numpy()],
            [s.sharp.numpy(), d, diff]]
    write_image(OUT / "scene.png", _grid(rows), 8, overwrite=True)
    print(f"scene: max |r| {float(s.defocus.abs().max()):.1f} px, "
          f"r in [{float(s.defocus.min()):.1f}, {float(s.defocus.max()):.1f}]")


def occlusion_figure() -> None:
    """A sharp bar in front of / behind a blurred textured plane: occlusion in the renderer."""
    h, w = 120, 200
    g = torch.Generator().manual_seed(0)
    tex = F.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w), mode="nearest")[0]
    bar = torch.tensor([0.9, 0.8, 0.2]).view(3, 1, 1).expand(3, h, w)
    colors = torch.stack([tex, bar])[None]
    alphas = torch.zeros(1, 2, 1, h, w)
    alphas[:, 0] = 1
    alphas[:, 1, :, 30:90, 80:120] = 1
    tiles = []
    for r_back, r_front in ((0.0, 8.0), (8.0, 0.0)):
        res = render_layers(colors, alphas, torch.tensor([[r_back, r_front]]))
        tiles += [linear_to_srgb(res.left[0]).numpy(), linear_to_srgb(res.right[0]).numpy()]
    write_image(OUT / "occlusion.png", _grid([tiles[:2], tiles[2:]]), 8, overwrite=True)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    kernel_figure()
    scene_figure()
    occlusion_figure()
