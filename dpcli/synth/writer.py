"""Write rendered scenes in the DPDD folder layout (what `dpdeblur synth` produces).

Per scene NAME in split S (train | val | test):
``S_c/source/NAME.png`` (combined), ``S_c/target/NAME.png`` (all-in-focus),
``S_l/source/NAME_L.png``, ``S_r/source/NAME_R.png``, ``S_c/defocus/NAME_defocus.tiff``
(float32 signed radius px) and ``S_c/meta/NAME.json`` (camera, layers, seed), written last so
its presence marks a finished scene.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dpcli.io.images import atomic_write_bytes, write_image
from dpcli.synth.scene import SynthScene, scene_rng

__all__ = ["SPLITS", "scene_name", "scene_split", "scene_paths", "scene_done", "write_scene"]

SPLITS = ("train", "val", "test")


def scene_name(seed: int, index: int) -> str:
    return f"synth_s{int(seed)}_{int(index):06d}"


def scene_split(seed: int, index: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                ) -> str:
    """Split of a scene, drawn per index (does not depend on how many scenes are made)."""
    u = scene_rng(seed ^ 0x5B1, index).random()
    edges = np.cumsum(fractions) / float(sum(fractions))
    return SPLITS[int(np.searchsorted(edges, u, side="right"))] if u < edges[-1] else SPLITS[-1]


def scene_paths(root: Path, name: str, split: str) -> dict[str, Path]:
    root = Path(root)
    return dict(
        combined=root / f"{split}_c" / "source" / f"{name}.png",
        sharp=root / f"{split}_c" / "target" / f"{name}.png",
        left=root / f"{split}_l" / "source" / f"{name}_L.png",
        right=root / f"{split}_r" / "source" / f"{name}_R.png",
        defocus=root / f"{split}_c" / "defocus" / f"{name}_defocus.tiff",
        meta=root / f"{split}_c" / "meta" / f"{name}.json",
    )


def scene_done(root: Path, name: str, split: str) -> bool:
    """True when every file of the scene exists (the JSON is written last)."""
    return all(p.exists() for p in scene_paths(root, name, split).values())


def write_scene(root: Path, scene: SynthScene, name: str, split: str, overwrite: bool = False
                ) -> list[Path]:
    """Write one scene (atomically, file by file); returns the paths written."""
    paths = scene_paths(root, name, split)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    for key in ("left", "right", "combined", "sharp"):
        write_image(paths[key], getattr(scene, key).numpy(), scene.bit_depth, overwrite=overwrite)
    write_image(paths["defocus"], scene.defocus.numpy().astype(np.float32), 32, overwrite=overwrite)
    meta = dict(scene.meta, name=name, split=split,
                files={k: str(p.relative_to(root)) for k, p in paths.items()})
    atomic_write_bytes(paths["meta"], json.dumps(meta, indent=1, default=float).encode(),
                       overwrite=overwrite)
    return list(paths.values())
