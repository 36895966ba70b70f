"""benchmarks/gpu_check.sh in its CPU smoke mode: every section runs and the report says what it measured."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from dpcli.metrics.lpips import weights_available

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke(tmp_path):
    out = tmp_path / "check"
    env = dict(os.environ, SMOKE="1", OUT=str(out), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    sections = report["sections"]
    assert {k: v["status"] for k, v in sections.items()} == dict.fromkeys(
        ("parity", "tiles", "speed", "zeroshot", "train"), "ok")
    families = {"bambnet", "defocusgan", "restormer", "lakdnet"}
    assert families <= set(sections["parity"]) and families <= set(sections["tiles"])
    # the same device twice: fp32 is exact, bf16 drifts but stays an image of the scene
    assert all(row["fp32_ok"] and row["bf16_psnr_vs_cpu_fp32"] > 30
               for k, row in sections["parity"].items() if isinstance(row, dict))
    assert all(row["tiled_vs_full_psnr_db"] > 25 for k, row in sections["tiles"].items() if isinstance(row, dict))
    speed = [row for row in sections["speed"].values() if isinstance(row, dict)]
    assert speed and all(row["full_seconds"] > 0 and row["planned_seconds"] > 0 for row in speed)
    assert sections["zeroshot"]["seconds"] > 0
    assert all(row["steps"] == 2 and row["samples_per_s"] > 0
               for k, row in sections["train"].items() if isinstance(row, dict))
    # without converted VGG16 weights (a fresh machine) DefocusGAN trains without its perceptual loss, and says so
    note = sections["train"]["defocusgan/generator"].get("note", "")
    assert ("convert-lpips" in note) == (not weights_available("vgg")), note
