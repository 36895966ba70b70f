"""Make the bundled examples: synthetic DP pairs and single images rendered with dpcli.synth.

    python examples/make_examples.py        # rewrites examples/{pairs,single,ground_truth}

Textures come only from scikit-image's bundled CC0 / public-domain photos and procedural
patterns (``allow_research=False``: no Middlebury image); nothing from ../shared/data.
"""
from __future__ import annotations

import json
from pathlib import Path

from dpcli.io.images import atomic_write_bytes, write_image
from dpcli.synth import SceneConfig, render_scene

ROOT = Path(__file__).parent
SEED = 2024
# name, kind, (height, width), output, seed index, focus
SCENES = [
    ("scene_a", "pair", (384, 512), "srgb8", 1, "middle"),
    ("scene_b", "pair", (256, 384), "srgb16", 0, "front"),
    ("scene_c", "single", (384, 512), "srgb8", 8, "middle"),
    ("scene_d", "single", (256, 384), "srgb8", 2, "front"),
]


def main() -> None:
    info = {}
    for name, kind, (h, w), output, index, focus in SCENES:
        cfg = SceneConfig(height=h, width=w, camera="dslr", scale_radii=False, max_radius=10.0,
                          focus_mode=focus, vignetting=False, output=output, objects=(3, 8), noise=False,
                          photo_prob=1.0, allow_research=False, stereo_prob=0.0, subject_prob=1.0)
        s = render_scene(SEED, cfg, index)
        depth = s.bit_depth
        if kind == "pair":
            write_image(ROOT / "pairs" / f"{name}_L.png", s.left.numpy(), depth, overwrite=True)
            write_image(ROOT / "pairs" / f"{name}_R.png", s.right.numpy(), depth, overwrite=True)
        else:
            write_image(ROOT / "single" / f"{name}.png", s.combined.numpy(), depth, overwrite=True)
        write_image(ROOT / "ground_truth" / f"{name}.png", s.sharp.numpy(), depth, overwrite=True)
        info[name] = dict(kind=kind, size=[w, h], bit_depth=depth, output=output, seed=SEED,
                          index=index, focus=focus,
                          radius_px=[round(float(s.defocus.min()), 2), round(float(s.defocus.max()), 2)],
                          textures=sorted({l["texture"] for l in s.meta["layers"]}))
    atomic_write_bytes(ROOT / "ground_truth" / "scenes.json", json.dumps(info, indent=1).encode(),
                       overwrite=True)
    for name, meta in info.items():
        print(name, meta)


if __name__ == "__main__":
    main()
