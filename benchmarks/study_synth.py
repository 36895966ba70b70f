"""Sim-to-real study of the synthetic corpus (issue 15): which factor moves the real-data numbers.

The base corpus is the one of dpcli/weights/README.md ("Training data for the DSLR colour models"); every
factor is then switched off on its own (an ablation). Each variant is a short training run of the
same network, from the same start (``--warm-start``), with the same recipe and seed, for the same
number of optimiser steps (not seconds: the variants stay comparable on a shared machine), scored on
the real dev scenes of its domain (Canon, colour) with :mod:`dpcli.train.evaluate`. The base corpus
also runs with ``--repeats`` other seeds: the spread of those runs is the noise a factor has to beat.
Prints a markdown table (for dpcli/weights/README.md) and writes ``OUT/study.json``.

    python benchmarks/study_synth.py --out runs/study --model bambnet --steps 1200 \\
        --warm-start dpcli/weights/checkpoints/bambnet_deblur_small.pixel-synth.pt --keep-mean 32

Variants run one after the other; ``--only NAME ...`` runs some of them. Two processes (one per core)
can share a study: each claims a variant before running it (``OUT/NAME.claim``) and skips those
claimed by the other. A variant whose folder holds a finished, scored run is not run again, so
``--table`` (or any rerun) prints the whole table from what is there.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import torch

BASE = {"isp": True, "fullframe_prob": 0.4, "highlight_prob": 0.3, "radius_scale": [0.15, 0.8],
        "depth_gamma": [1, 2], "isp_options": {"jpeg_prob": 0.2, "palette_prob": 0.2}}
# run name -> (table label, how the corpus changes; None: drop the key, i.e. SceneConfig's default;
# "photos": no --photos, i.e. scikit-image's images and procedural textures; "{shared}" in a value:
# the --shared folder). The "without" rows are ablations of the base corpus, "with" rows candidates.
FACTORS = {
    "no_photos": ("without natural photos (--photos debian)", "photos"),
    "no_fullframe": ("without full-frame pseudo-depth scenes", {"fullframe_prob": 0.0}),
    "no_isp": ("without the DSLR raw pipeline (noise, WB, colour matrix, tone curve)", {"isp": False}),
    "no_highlights": ("without highlights above white", {"highlight_prob": 0.0}),
    "no_dpdd_blur": ("without Canon-measured blur sizes (radius_scale, depth_gamma)",
                     {"radius_scale": None, "depth_gamma": None}),
    "no_jpeg_palette": ("without JPEG + palette inputs", {"isp_options": None}),
    "pixel4_kernels": ("with the Pixel 4 calibration's measured DP kernels instead of RDPD's",
                       {"kernels": "{shared}/data/pixel4/calibration"}),
}
STAGE = {"defocusgan": "generator", "bambnet": "deblur"}
# the recipe of the shipped / candidate dslr runs (dpcli/weights/README.md), less corpus, steps and output
RECIPE = {
    "bambnet": "--coc-source gt --crop 128 --batch-size 2 --lr 4e-4 --stage-set r_max=20 --stage-set anneal_steps=300",
    "defocusgan": "--crop 128 --batch-size 2 --lr 1.5e-4 --stage-set alpha=0 --stage-set anneal_steps=400 --stage-set r_max=20",
}


def variant(change: str | dict | None, shared: Path = Path("../shared")) -> tuple[dict, bool]:
    """(scene options, photos on) of the base corpus with one change (see FACTORS)."""
    options, photos = dict(BASE), True
    if change == "photos":
        photos = False
    elif isinstance(change, dict):
        for key, value in change.items():
            if value is None:
                options.pop(key, None)
            else:
                options[key] = value.format(shared=shared) if isinstance(value, str) else value
    return options, photos


def plan(repeats: int, seed: int) -> dict[str, tuple[str, str | dict | None, int]]:
    """run name -> (table label, corpus change, seed), in running order."""
    runs: dict[str, tuple[str, str | dict | None, int]] = {"base": ("base corpus (all factors)", None, seed)}
    for name, (label, change) in FACTORS.items():
        runs[name] = (label, change, seed)
    for k in range(1, repeats + 1):
        runs[f"base_seed{seed + k}"] = (f"base corpus, seed {seed + k}", None, seed + k)
    return runs


def start_step(warm_start: Path | None) -> int:
    if warm_start is None:
        return 0
    return int(torch.load(warm_start, map_location="cpu", weights_only=False)["step"])


def train(out: Path, change, seed: int, last_step: int, args) -> None:
    options, photos = variant(change, args.shared)
    cmd = [sys.executable, "-m", "dpcli", "train", args.model, "--stage", STAGE[args.model], "--data", "synth",
           "--synth-camera", "dslr", "--config", args.config, "--precision", args.precision,
           "--threads", str(args.threads), "--steps", str(last_step),
           "--seed", str(seed), "--val-every", "0", "-o", str(out), "--overwrite", "--quiet",
           *shlex.split(args.recipe if args.recipe is not None else RECIPE[args.model])]
    if photos:
        cmd += ["--photos", "debian"]
    for key, value in options.items():
        cmd += ["--synth-set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    if args.warm_start:
        cmd += ["--warm-start", str(args.warm_start)]
    print(shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def score(out: Path, args) -> dict:
    from dpcli.train.evaluate import evaluate

    scores = evaluate(out / "checkpoint.pt", args.shared, synth_count=8, grey=False, camera="dslr",
                      keep_mean_px=args.keep_mean, domains=("dslr",))
    keep = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    keep["canon_scene_psnr"] = {k: v["pred"]["psnr"] for k, v in scores.get("canon_scenes", {}).items()}
    keep["canon_scene_psnr_input"] = {k: v["input"]["psnr"] for k, v in scores.get("canon_scenes", {}).items()}
    return keep


def table(rows: dict[str, dict], runs: dict, args) -> str:
    done = {name: rows[name] for name in runs if name in rows}
    if "base" not in done:
        return "(no scored base run yet)"
    bases = [s["canon_psnr"] for name, s in done.items() if runs[name][1] is None]
    base = statistics.mean(bases)
    spread = f"{min(bases) - base:+.2f} .. {max(bases) - base:+.2f}" if len(bases) > 1 else "n/a"
    first = done["base"]
    scenes = sorted(first["canon_scene_psnr"])
    lines = [f"{args.model} {STAGE[args.model]} ({args.config}), {args.steps} steps per variant"
             + (f" from {args.warm_start}" if args.warm_start else "")
             + (f", local mean kept at {args.keep_mean:g} px" if args.keep_mean else "")
             + f"; base = mean of {len(bases)} seed(s), seed spread {spread} dB",
             "",
             "| variant | " + " | ".join(f"Canon {s}" for s in scenes)
             + " | Canon PSNR | Canon SSIM | vs base (dB) | synthetic PSNR (8 default dslr scenes) |",
             "| --- |" + " ---: |" * (len(scenes) + 4),
             "| input (combined image) | " + " | ".join(f"{first['canon_scene_psnr_input'][s]:.2f}" for s in scenes)
             + f" | {first['canon_psnr_input']:.2f} | {first['canon_ssim_input']:.3f} | | "
             + f"{first['synth_psnr_input']:.2f} |"]
    for name, s in done.items():
        lines.append(f"| {runs[name][0]} | " + " | ".join(f"{s['canon_scene_psnr'][k]:.2f}" for k in scenes)
                     + f" | {s['canon_psnr']:.2f} | {s['canon_ssim']:.3f} | {s['canon_psnr'] - base:+.2f} | "
                     + f"{s['synth_psnr']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", choices=list(STAGE), default="bambnet")
    ap.add_argument("--config", default="small")
    ap.add_argument("--steps", type=int, default=1200, help="optimiser steps per variant (after the warm start)")
    ap.add_argument("--warm-start", type=Path, default=None)
    ap.add_argument("--recipe", default=None, help="training options of every variant (default: the dslr recipe)")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--repeats", type=int, default=1, help="extra seeds of the base corpus (noise estimate)")
    ap.add_argument("--keep-mean", type=float, default=32.0, metavar="PX", help="post stage used when scoring")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("DPDEBLUR_SHARED", "../shared")))
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants (names below)")
    ap.add_argument("--table", action="store_true", help="train nothing: print the table of what is scored")
    args = ap.parse_args()
    runs = plan(args.repeats, args.seed)
    for name in args.only or []:
        if name not in runs:
            ap.error(f"unknown variant {name!r}; choose from {', '.join(runs)}")
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [] if args.table else (args.only or list(runs))
    last_step = start_step(args.warm_start) + args.steps if todo else 0
    for name in todo:
        out = args.out / name
        if (out / "study_eval.json").exists():
            continue
        claim = args.out / f"{name}.claim"  # another process on the same study runs this variant
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            print(f"{name}: claimed by another process ({claim}; delete it if none runs)", flush=True)
            continue
        try:
            if not (out / "run.json").exists():
                train(out, runs[name][1], runs[name][2], last_step, args)
            (out / "study_eval.json").write_text(json.dumps(score(out, args), indent=1))
        finally:
            claim.unlink()
    rows = {name: json.loads((args.out / name / "study_eval.json").read_text())
            for name in runs if (args.out / name / "study_eval.json").exists()}
    (args.out / "study.json").write_text(json.dumps(rows, indent=1))
    print(table(rows, runs, args))


if __name__ == "__main__":
    main()
