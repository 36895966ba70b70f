"""A wheel built from the checkout ships the weights and their manifest: installed in a fresh
virtual environment it picks the same methods and writes bit-identical outputs, from another folder."""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dpcli
from dpcli.io.images import read_array
from dpcli.models.registry import find_pretrained, list_pretrained, manifest_path, weights_dir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the copy pip vendors
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
# what a wheel build needs from the checkout: not the VCS, old builds or training states
_SKIP = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs",
                               "out", "tmp", ".venv", "checkpoints")


def _package_data() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["package-data"]["dpcli"]


def test_weights_live_inside_the_package(monkeypatch):
    monkeypatch.delenv("DPDEBLUR_WEIGHTS", raising=False)
    package = Path(dpcli.__file__).resolve().parent
    assert weights_dir().resolve() == package / "weights"
    entries = list_pretrained()
    assert entries, "no weights ship"
    patterns = _package_data()
    files = [manifest_path()] + [find_pretrained(e.name).path for e in entries]
    for path in files:
        rel = path.resolve().relative_to(package).as_posix()
        assert path.is_file(), rel
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not package data"


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(dist)], check=True, cwd=tmp)
    (wheel,) = dist.glob("dpdeblur-*.whl")
    return wheel


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DPDEBLUR_WEIGHTS", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


@pytest.mark.slow
def test_wheel_in_fresh_venv_matches_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "dpcli/weights/manifest.json" in names
    assert not [n for n in names if "checkpoints" in n or n.endswith(".pt")]
    shipped = {Path(e.file).name for e in list_pretrained()}
    assert shipped <= {Path(n).name for n in names}

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    "--disable-pip-version-check", str(wheel)], check=True, env=_env())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import dpcli; print(dpcli.__file__)"], check=True, cwd=elsewhere,
                           env=_env(), capture_output=True, text=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where

    pairs = ROOT / "examples" / "pairs"
    installed = subprocess.run([str(venv / "bin" / "dpdeblur"), "run", str(pairs), "-o", "out", "--threads", "1",
                                "--json"], cwd=elsewhere, env=_env(), capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    checkout = subprocess.run([sys.executable, "-m", "dpcli", "run", str(pairs), "-o", str(tmp_path / "checkout"),
                               "--threads", "1", "--json"], cwd=ROOT, env={**_env(), "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True)
    assert checkout.returncode == 0, checkout.stderr

    def methods(stdout: str) -> dict[str, str]:
        summary = json.loads(stdout)
        return {it["name"]: it["details"]["method"] for it in summary["items"]}

    assert methods(installed.stdout) == methods(checkout.stdout)
    from dpcli.methods import get_method

    def uses_weights(name: str) -> bool:  # shipped weights, itself or a composite's part: not a fallback
        return "." in name or any("." in part for part in getattr(get_method(name), "parts", ()))

    assert all(uses_weights(m) for m in methods(installed.stdout).values())
    outputs = sorted(p.name for p in (elsewhere / "out").glob("*.png"))
    assert outputs == sorted(p.name for p in (tmp_path / "checkout").glob("*.png")) and outputs
    for name in outputs:
        a, b = read_array(elsewhere / "out" / name), read_array(tmp_path / "checkout" / name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
