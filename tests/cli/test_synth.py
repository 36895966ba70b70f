"""`dpdeblur synth`: DPDD layout, determinism, resume, bad options."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dpcli.cli import app
from dpcli.io.images import read_image

pytest.importorskip("skimage")


def _run(*args):
    return CliRunner().invoke(app, ["synth", *map(str, args)], catch_exceptions=False)


def test_writes_dpdd_layout_deterministic_and_resumes(tmp_path):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    res = _run("-o", out_a, "--count", 3, "--size", "48x32", "--seed", 7, "--synth-camera", "mixed", "--quiet")
    assert res.exit_code == 0, res.output
    metas = sorted(out_a.glob("*_c/meta/*.json"))
    assert len(metas) == 3
    for meta_path in metas:
        meta = json.loads(meta_path.read_text())
        root = out_a
        files = {k: root / v for k, v in meta["files"].items()}
        assert files["left"].name.endswith("_L.png") and files["right"].parent.parent.name.endswith("_r")
        left = read_image(files["left"])
        assert left.data.shape == (3, 32, 48) and left.bit_depth == meta["bit_depth"]
        dmap = read_image(files["defocus"])
        assert dmap.bit_depth == 32 and dmap.data.shape == (1, 32, 48)
        # the largest radius may sit on a hidden layer: the visible map stays within it
        assert 0 < float(np.abs(dmap.data).max()) <= meta["camera"]["max_radius"] * (1 + 1e-5)
        assert meta["split"] in ("train", "val", "test") and meta["seed"] == 7
    assert _run("-o", out_b, "--count", 3, "--size", "48x32", "--seed", 7, "--synth-camera", "mixed",
                "--quiet").exit_code == 0
    for p in out_a.rglob("*.png"):
        assert p.read_bytes() == (out_b / p.relative_to(out_a)).read_bytes()
    # resume: the 3 existing scenes are skipped (untouched), one more is made
    stamp = {p: p.stat().st_mtime_ns for p in out_a.rglob("*") if p.is_file()}
    res = _run("-o", out_a, "--count", 4, "--size", "48x32", "--seed", 7, "--synth-camera", "mixed", "--json")
    summary = json.loads(res.stdout)
    assert summary["counts"] == {"ok": 1, "skipped": 3, "failed": 0}
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())


def test_grey_phone_linear(tmp_path):
    res = _run("-o", tmp_path / "g", "--count", 1, "--size", 40, "--synth-camera", "phone", "--grey",
               "--native-blur", "--quiet")
    assert res.exit_code == 0, res.output
    meta = json.loads(next((tmp_path / "g").glob("*_c/meta/*.json")).read_text())
    img = read_image(tmp_path / "g" / meta["files"]["left"])
    assert img.data.shape == (1, 40, 40) and img.bit_depth == 16 and meta["output"] == "linear16"
    assert 5 <= meta["camera"]["max_radius"] <= 10


def test_bad_options(tmp_path):
    from dpcli.errors import DpError

    with pytest.raises(DpError, match="--synth-camera"):
        _run("-o", tmp_path / "x", "--synth-camera", "tablet")
    with pytest.raises(DpError, match="--size"):
        _run("-o", tmp_path / "x", "--size", "big")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DpError, match="must be a folder"):
        _run("-o", tmp_path / "file", "--count", 1)


def test_photos_and_scene_options(tmp_path):
    from dpcli.errors import DpError
    from dpcli.io.images import write_image

    with pytest.raises(DpError, match="photo folder not found"):
        _run("-o", tmp_path / "x", "--count", 1, "--photos", tmp_path / "missing")
    with pytest.raises(DpError, match="unknown scene option 'colour'"):
        _run("-o", tmp_path / "x", "--count", 1, "--synth-set", "colour=1")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    write_image(photos / "p.png", rng.random((3, 64, 64)).astype(np.float32), 8)
    res = _run("-o", tmp_path / "y", "--count", 1, "--size", 48, "--photos", photos, "--synth-set", "fullframe_prob=1",
               "--synth-set", "isp=true", "--quiet")
    assert res.exit_code == 0, res.output
    meta = json.loads(next((tmp_path / "y").glob("*_c/meta/*.json")).read_text())
    assert meta["layers"][0]["kind"] == "segment_layer" and "isp" in meta
