"""Sim-to-real study of the synthetic corpus (issue 15): which factor moves the real-data numbers.

The base corpus is the one of docs/training.md; every factor is then switched off on its own
(an ablation). Each variant is a short training run of the same network from the same start
(``--warm-start``, e.g. a checkpoint of a run on the base corpus, so that a few CPU-minutes
measure the factor rather than the first steps of learning), scored on the real dev scenes
(Canon for the dslr colour corpus) with :mod:`dpcli.train.evaluate`. Prints a markdown table
(for weights/README.md) and writes ``OUT/study.json``.

    flock /work/coord/heavy.lock python benchmarks/study_synth.py --out runs/study \\
        --model defocusgan --budget 900 --warm-start /work/runs/gen_dslr_a/checkpoint.pt

A run is skipped when its folder already holds a finished run (the study resumes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BASE = {"isp": True, "fullframe_prob": 0.4, "highlight_prob": 0.3, "radius_scale": [0.15, 0.8],
        "depth_gamma": [1, 2], "isp_options": {"jpeg_prob": 0.2, "palette_prob": 0.2}}
# factor -> what the corpus becomes without it (None: drop the key, i.e. SceneConfig's default)
FACTORS = {
    "natural photos (--photos debian)": "photos",
    "full-frame scenes": {"fullframe_prob": 0.0},
    "DSLR raw pipeline (isp)": {"isp": False},
    "highlights above white": {"highlight_prob": 0.0},
    "DPDD blur sizes (radius_scale, depth_gamma)": {"radius_scale": None, "depth_gamma": None},
    "JPEG + palette inputs": {"isp_options": None},
}
STAGE = {"defocusgan": "generator", "bambnet": "deblur"}


def variant(without: str | dict | None) -> tuple[dict, bool]:
    """(scene options, photos on) of the base corpus minus one factor."""
    options, photos = dict(BASE), True
    if without == "photos":
        photos = False
    elif isinstance(without, dict):
        for key, value in without.items():
            if value is None:
                options.pop(key, None)
            else:
                options[key] = value
    return options, photos


def train(name: str, options: dict, photos: bool, args) -> Path:
    out = args.out / name
    if (out / "run.json").exists():
        return out
    cmd = [sys.executable, "-m", "dpcli", "train", args.model, "--stage", STAGE[args.model], "--data", "synth",
           "--synth-camera", "dslr", "--config", args.config, "--precision", args.precision,
           "--threads", str(args.threads), "--time-budget", str(args.budget), "--seed", str(args.seed),
           "-o", str(out), "--overwrite", "--quiet"]
    if photos:
        cmd += ["--photos", "debian"]
    for key, value in options.items():
        cmd += ["--synth-set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    if args.warm_start:
        cmd += ["--warm-start", str(args.warm_start)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return out


def score(run: Path, args) -> dict:
    from dpcli.train.evaluate import evaluate

    cached = run / "study_eval.json"
    if cached.exists():
        return json.loads(cached.read_text())
    scores = evaluate(run / "checkpoint.pt", args.shared, synth_count=8, grey=False, camera="dslr")
    keep = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    cached.write_text(json.dumps(keep, indent=1))
    return keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", choices=list(STAGE), default="defocusgan")
    ap.add_argument("--config", default="small")
    ap.add_argument("--budget", type=float, default=900, help="training seconds per variant")
    ap.add_argument("--warm-start", type=Path, default=None)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("DPDEBLUR_SHARED", "../shared")))
    ap.add_argument("--factors", nargs="*", default=list(FACTORS), choices=list(FACTORS))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for label, without in [("base corpus (all factors)", None)] + [(f"without {f}", FACTORS[f]) for f in args.factors]:
        name = "base" if without is None else "no_" + "".join(c if c.isalnum() else "_" for c in label[8:])[:40]
        options, photos = variant(without)
        rows[label] = score(train(name, options, photos, args), args)
        (args.out / "study.json").write_text(json.dumps(rows, indent=1))
    base = rows["base corpus (all factors)"]
    print(f"\n{args.model} {STAGE[args.model]} ({args.config}), {args.budget:.0f} s per variant"
          + (f", warm start {args.warm_start}" if args.warm_start else ""))
    print("| variant | Canon PSNR | Canon SSIM | vs base (dB) | synthetic PSNR |")
    print("| --- | ---: | ---: | ---: | ---: |")
    inp = base.get("canon_psnr_input", float("nan"))
    print(f"| input (combined image) | {inp:.2f} | {base.get('canon_ssim_input', float('nan')):.3f} | | |")
    for label, s in rows.items():
        print(f"| {label} | {s.get('canon_psnr', float('nan')):.2f} | {s.get('canon_ssim', float('nan')):.3f} | "
              f"{s.get('canon_psnr', float('nan')) - base.get('canon_psnr', float('nan')):+.2f} | "
              f"{s.get('synth_psnr', float('nan')):.2f} |")


if __name__ == "__main__":
    main()
