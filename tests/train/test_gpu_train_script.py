"""benchmarks/gpu_train.sh in its CPU smoke mode: both trainings, their scores, the run comparison."""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from dpcli.metrics.lpips import weights_available

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("skimage")


def test_gpu_train_script_smoke(tmp_path):
    out = tmp_path / "gpu"
    env = dict(os.environ, SMOKE="1", OUT=str(out), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_train.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for name in ("bambnet_deblur_dslr", "defocusgan_generator_dslr"):
        train = summary[f"train_{name}"]
        assert train["status"] == "ok" and train["steps"] == 2, train
        # no converted VGG16 weights (a fresh machine): DefocusGAN trains without its perceptual loss, and says so
        without_vgg = name.startswith("defocusgan") and not weights_available("vgg")
        assert ("convert-lpips" in train.get("note", "")) == without_vgg
        assert (out / "runs" / name / "checkpoint.pt").exists() and (out / "runs" / name / "state_fp16.pt").exists()
        scores = json.loads((out / f"eval_{name}.json").read_text())
        assert math.isfinite(scores["synth_psnr"]) and scores["synth_psnr_input"] > 10
    report = json.loads((out / "run_compare.json").read_text())
    assert report["default_cpu_fp32"]["rc"] == 0, report["default_cpu_fp32"]
    compare = report["compare_default_cpu_bf16_vs_default_cpu_fp32"]
    assert compare and all(row["psnr_db"] > 35 for row in compare.values()), compare
