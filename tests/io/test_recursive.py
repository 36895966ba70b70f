"""--recursive: pairs and single images in folder trees, outputs mirroring the input's relative paths;
without it, a folder of subfolders says to add it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dpcli.cli import app
from dpcli.errors import InputError
from dpcli.io.images import write_image
from dpcli.io.pairs import PairInput, SingleInput, discover_inputs


def _image(path: Path, seed: int = 0) -> None:
    data = np.random.default_rng(seed).random((3, 64, 80)).astype(np.float32) * 0.8 + 0.1
    write_image(path, data, 8)


def _tree(root: Path) -> Path:
    """root/pairs/scene_a_{L,R}.png, root/single/scene_c.png, root/trips/2024/day1/{left,right,target}/x.png,
    root/single/target/scene_c.png (ground truth), root/.hidden/h.png."""
    for side in ("L", "R"):
        (root / "pairs").mkdir(parents=True, exist_ok=True)
        _image(root / "pairs" / f"scene_a_{side}.png")
    (root / "single" / "target").mkdir(parents=True)
    _image(root / "single" / "scene_c.png", 1)
    _image(root / "single" / "target" / "scene_c.png", 2)
    for sub in ("left", "right", "target"):
        (root / "trips" / "2024" / "day1" / sub).mkdir(parents=True)
        _image(root / "trips" / "2024" / "day1" / sub / "x.png", 3)
    (root / ".hidden").mkdir()
    _image(root / ".hidden" / "h.png", 4)
    return root


def test_recursive_finds_pairs_and_singles_named_by_their_relative_folder(tmp_path):
    root = _tree(tmp_path / "photos")
    items = discover_inputs([root], recursive=True)
    names = {it.name: type(it) for it in items}
    assert names == {"pairs/scene_a": PairInput, "single/scene_c": SingleInput, "trips/2024/day1/x": PairInput}
    day = next(it for it in items if it.name == "trips/2024/day1/x")
    assert day.target == root / "trips" / "2024" / "day1" / "target" / "x.png"  # layout kept, not re-entered


def test_recursive_leaves_out_the_output_folder_inside_the_tree(tmp_path):
    root = _tree(tmp_path / "photos")
    _image(root / "out" / "pairs" / "scene_a.png")  # an earlier run's output
    names = {it.name for it in discover_inputs([root], recursive=True, exclude=[root / "out"])}
    assert not any(n.startswith("out/") for n in names) and "pairs/scene_a" in names


def test_without_recursive_a_folder_of_subfolders_says_to_add_it(tmp_path):
    root = _tree(tmp_path / "photos")
    with pytest.raises(InputError) as info:
        discover_inputs([root])
    assert info.value.one_line() == (f"no images in {root.as_posix()}/; its subfolders pairs/, single/, trips/ "
                                     "hold some: add --recursive")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="no images found"):
        discover_inputs([empty], recursive=True)


def test_run_recursive_mirrors_the_tree(tmp_path):
    root = _tree(tmp_path / "photos")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(root), "-o", str(out), "--recursive", "--threads", "1", "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == ["pairs/scene_a.png", "single/scene_c.png", "trips/2024/day1/x.png"]
    again = CliRunner().invoke(app, ["run", str(root), "-o", str(out), "--recursive", "--threads", "1", "--json"])
    assert json.loads(again.stdout)["counts"]["skipped"] == 3  # each output's record found in its subfolder
