"""Issue 17 through `dpdeblur run` (the main job): nothing lost, bad inputs named, -q final line."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from dpcli.io.images import write_image


def _pair(folder: Path, name: str = "scene", h: int = 64, w: int = 96, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sharp = rng.random((3, h, w)).astype(np.float32)
    write_image(folder / f"{name}_L.png", np.clip(sharp * 0.9 + 0.05, 0, 1), 8)
    write_image(folder / f"{name}_R.png", np.clip(np.roll(sharp, 1, axis=2) * 0.9 + 0.05, 0, 1), 8)


def test_output_folder_equal_to_the_input_folder_is_named_not_no_images(dpdeblur, tmp_path):
    _pair(tmp_path / "photos")
    res = dpdeblur("run", tmp_path / "photos", "-o", tmp_path / "photos", "--method", "classical")
    assert res.code == 2 and len(res.err_lines) == 1
    assert "both the input and the output folder" in res.err and "no images found" not in res.err


def test_rerun_skips_and_another_method_is_refused_before_computing(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    out = tmp_path / "out"
    first = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["counts"]["ok"] == 1
    made = (out / "scene.png").read_bytes()
    again = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "--json")
    assert again.code == 0 and json.loads(again.out)["counts"]["skipped"] == 1
    start = time.perf_counter()
    other = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "zeroshot")
    assert time.perf_counter() - start < 5  # refused up front, nothing computed
    assert other.code == 2 and len(other.err_lines) == 1, other.err
    assert "classical" in other.err and "zeroshot" in other.err and "--overwrite" in other.err
    assert (out / "scene.png").read_bytes() == made  # nothing lost
    wants_map = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "--defocus-map")
    assert wants_map.code == 2 and "defocus map off -> on" in wants_map.err  # says why, before computing


def test_quiet_prints_the_final_line(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out", "--method", "classical", "-q")
    assert res.code == 0 and len(res.err_lines) == 1 and res.err_lines[0].startswith("1 done")


def test_a_corrupt_file_is_reported_as_such_without_a_model(dpdeblur, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scene_L.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "in" / "scene_R.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out")
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    assert "scene_L.png" in res.err and "weights" not in res.err


@pytest.mark.parametrize("size", [(1, 1), (5, 7)])
def test_a_tiny_pair_passes_through_or_is_one_line(dpdeblur, tmp_path, size):
    _pair(tmp_path / "in", h=size[0], w=size[1])
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out")
    assert res.code in (0, 2), res.err
    assert "Traceback" not in res.err and "padded input size" not in res.err
    if res.code == 2:
        assert len(res.err_lines) == 1 and "scene" in res.err and "px" in res.err
    else:
        assert (tmp_path / "out" / "scene.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--tile", "7"], "--tile 7: must be 0"),
    (["--tile", "-1"], "--tile -1: must be 0"),
    (["--precision", "fp16"], "--precision fp16 needs a GPU"),
])
def test_bad_values_are_refused_the_same_way(dpdeblur, tmp_path, args, message):
    _pair(tmp_path / "in")
    for command in (["run", tmp_path / "in"], ["defocus-map", tmp_path / "in"]):
        res = dpdeblur(*command, "-o", tmp_path / "out", *args)
        assert res.code == 2 and len(res.err_lines) == 1 and message in res.err, (command, res.err)
