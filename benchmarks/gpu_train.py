"""One-shot GPU training and checks (issue 15 section 2), run by ``benchmarks/gpu_train.sh``.

1. Trains BaMBNet deblur (DP pair) and the DefocusGAN generator (single image) on on-the-fly DSLR
   colour scenes (natural photos, full-frame pseudo-depth scenes, DSLR raw pipeline), the scenes
   rendered on the GPU itself; each run stops at its time budget with a checkpoint and a compact
   fp16 state.
2. Scores each candidate on fixed synthetic scenes and on the real data (``--shared``; Pixel 4 and
   Canon, :mod:`dpcli.train.evaluate`).
3. Runs ``dpdeblur run`` on ``examples/`` on the CPU (fp32) and on the GPU (fp32 and fp16) and
   compares the outputs (max abs difference, PSNR between them): our CUDA path's first check.

Everything lands under ``--out``: ``runs/NAME/`` (checkpoint.pt, state_fp16.pt, train.log,
metrics.jsonl, run.json), ``eval_NAME.json``, ``run_DEVICE_PRECISION/``, ``run_compare.json``,
``summary.json``. A failing step is recorded and the next one still runs.

``--smoke``: CPU, the ``test`` networks, 2 steps, 32 px crops, synthetic scores only, and the run
check CPU fp32 vs CPU bf16 (what tests/train/test_gpu_train_script.py runs in CI).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from _common import perceptual_options

ROOT = Path(__file__).resolve().parents[1]


def _scene_options(photos: str | None, smoke: bool) -> dict:
    """The DSLR colour corpus of docs/training.md (the coordinator's CPU runs use the same)."""
    options = {"camera": "dslr", "isp": True, "fullframe_prob": 0.4, "highlight_prob": 0.3,
               "radius_scale": [0.15, 0.8], "depth_gamma": [1, 2],
               "isp_options": {"jpeg_prob": 0.2, "palette_prob": 0.2}}
    if photos:
        options["photos"] = [photos]
    if smoke:
        options["fullframe_prob"] = 0.0  # 32 px scenes are too small to segment usefully
    return options


def train_one(name: str, model: str, stage: str, args, device: str, photos: str | None) -> dict:
    from dpcli.train.runner import TrainRequest, run_training

    out = args.out / "runs" / name
    smoke = args.smoke
    stage_options, note = perceptual_options(model)
    req = TrainRequest(
        model=model, stage=stage, data="synth", config="test" if smoke else args.config,
        out=out, steps=2 if smoke else None, crop=32 if smoke else args.crop,
        batch_size=2 if smoke else args.batch, device=device, precision="fp32" if smoke else args.precision,
        time_budget=None if smoke else args.budget, val_every=0 if smoke else 500,
        ckpt_every=0 if smoke else 500, val_count=2 if smoke else 8, seed=args.seed,
        synth_length=64 if smoke else 4096, synth_options=_scene_options(photos, smoke), quiet=True,
        stage_options=stage_options, overwrite=True)
    start = time.perf_counter()
    result, _, recipe = run_training(req, save_state=out / "state_fp16.pt")
    return dict(status="ok", steps=result.last_step, stopped=result.stopped, seconds=time.perf_counter() - start,
                samples_per_s=result.steps_done * recipe["batch_size"] / max(result.seconds, 1e-9),
                last_val=result.last_val, checkpoint=str(out / "checkpoint.pt"), **({"note": note} if note else {}))


def evaluate_one(name: str, ckpt: str, args, device: str) -> dict:
    from dpcli.train.evaluate import evaluate

    shared = None if args.smoke or args.shared is None else args.shared
    scores = evaluate(Path(ckpt), shared, synth_count=2 if args.smoke else 16, tile=0 if args.smoke else 512,
                      grey=False, camera="dslr", device=device)
    (args.out / f"eval_{name}.json").write_text(json.dumps(scores, indent=2, default=float))
    keep = ("synth_psnr", "synth_psnr_input", "pixel4_psnr", "pixel4_psnr_input", "canon_psnr",
            "canon_psnr_input", "canon_ssim", "canon_ssim_input")
    return {k: scores[k] for k in keep if k in scores}


def dpdeblur_run(out: Path, device: str, precision: str, inputs: list[Path], extra: list[str]) -> dict:
    """``dpdeblur run INPUTS -o out --device D --precision P`` in a fresh process (as a user runs it)."""
    cmd = [sys.executable, "-m", "dpcli", "run", *map(str, inputs), "-o", str(out), "--device", device,
           "--precision", precision, "--overwrite", "--quiet", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    return dict(cmd=" ".join(cmd), rc=proc.returncode, seconds=time.perf_counter() - start,
                stderr=proc.stderr.strip()[-2000:])


def compare_outputs(ref: Path, other: Path) -> dict:
    """Max abs difference and PSNR between same-named images of two output folders."""
    from dpcli.io.images import read_image

    rows = {}
    for p in sorted(ref.rglob("*.png")):
        q = other / p.relative_to(ref)
        if not q.exists():
            rows[str(p.relative_to(ref))] = {"missing": True}
            continue
        a, b = read_image(p).data, read_image(q).data
        mse = float(np.mean((a.astype(np.float64) - b) ** 2))
        rows[str(p.relative_to(ref))] = {"max_abs_diff": float(np.abs(a - b).max()),
                                         "psnr_db": float("inf") if mse == 0 else float(-10 * np.log10(mse))}
    return rows


def run_checks(args, device: str) -> dict:
    """The default method of ``run`` on examples/ (pairs and singles) and BaMBNet's shipped weights
    on the pairs, each on the CPU (fp32) and on the device (fp32, fp16); outputs compared."""
    ex = ROOT / "examples"
    if args.smoke:  # one pair; CPU fp32 vs CPU bf16
        methods = {"default": ([ex / "pairs" / "scene_b_L.png", ex / "pairs" / "scene_b_R.png"], [])}
        settings = [("cpu", "fp32"), ("cpu", "bf16")]
    else:
        methods = {"default": ([ex / "pairs", ex / "single"], []), "bambnet": ([ex / "pairs"], ["--method", "bambnet"])}
        settings = [("cpu", "fp32"), (device, "fp32"), (device, "fp16")]
    report: dict = {}
    for method, (inputs, extra) in methods.items():
        keys = []
        for dev, prec in settings:
            key = f"{method}_{dev.replace(':', '')}_{prec}"
            keys.append(key)
            report[key] = dpdeblur_run(args.out / f"run_{key}", dev, prec, inputs, extra)
        ref = keys[0]
        for key in keys[1:]:
            # rc 1 = some inputs failed (e.g. no shipped single-image model): compare what was written
            if report[key]["rc"] in (0, 1) and report[ref]["rc"] in (0, 1):
                report[f"compare_{key}_vs_{ref}"] = compare_outputs(args.out / f"run_{ref}", args.out / f"run_{key}")
    (args.out / "run_compare.json").write_text(json.dumps(report, indent=2, default=float))
    return report


def pack_photos(source: str, dest: Path) -> None:
    """Downscaled copies of the photos (their licences travel with the file names; docs/training.md)."""
    import imagecodecs

    from dpcli.synth.photos import list_photos, load_photo_file

    dest.mkdir(parents=True, exist_ok=True)
    files = list_photos((source,))
    for path in files:
        arr = np.ascontiguousarray(load_photo_file(path).transpose(1, 2, 0))
        (dest / f"{path.stem}.jpg").write_bytes(imagecodecs.jpeg8_encode(arr, level=92))
    print(f"{len(files)} photos -> {dest} ({sum(p.stat().st_size for p in dest.glob('*.jpg')) / 2**20:.1f} MB)")


def _step(summary: dict, key: str, fn, *a) -> object:
    """Run one step; record its result or its error (the next steps still run), save the summary."""
    try:
        summary[key] = fn(*a)
    except Exception as exc:  # one failing step must not lose the others' results
        summary[key] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc()[-3000:]}
    print(f"[{time.strftime('%H:%M:%S')}] {key}: {json.dumps(summary[key], default=float)[:400]}", flush=True)
    (Path(summary["out"]) / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (required, except for --pack-photos)")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny networks, a few steps (CI)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--config", default="paper", help="network size: paper | small")
    ap.add_argument("--crop", type=int, default=384, help="training crop px (scene size)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--precision", default="bf16", help="training precision: bf16 | fp32")
    ap.add_argument("--budget", type=float, default=210, help="seconds of training per network")
    ap.add_argument("--shared", type=Path, default=Path(os.environ["DPDEBLUR_SHARED"])
                    if os.environ.get("DPDEBLUR_SHARED") else None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", default="debian", help="photo folder, 'debian' (the Debian packages) or 'none'")
    ap.add_argument("--pack-photos", type=Path, default=None, metavar="DIR",
                    help="only write the --photos photos, 1600 px JPEGs (~15 MB), to DIR (to carry them to "
                         "a machine without the packages: PHOTOS=DIR there), then exit")
    args = ap.parse_args()
    if args.pack_photos:
        pack_photos(args.photos, args.pack_photos)
        return
    if args.out is None:
        ap.error("--out is required")
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.smoke else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"error: --device {device} but torch sees no CUDA GPU (torch {torch.__version__})")
    photos = None if args.photos == "none" else args.photos
    if photos:
        from dpcli.synth.photos import list_photos

        try:
            print(f"photos: {len(list_photos((photos,)))} files from {photos}", flush=True)
        except Exception as exc:
            print(f"NOTE: {exc}; training on the bundled photos and procedural textures only", flush=True)
            photos = None
    summary: dict = {"out": str(args.out), "device": device, "smoke": args.smoke, "photos": photos,
                     "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
                     "settings": {k: str(v) for k, v in vars(args).items()}}
    torch.backends.cudnn.benchmark = True
    for name, model, stage in (("bambnet_deblur_dslr", "bambnet", "deblur"),
                               ("defocusgan_generator_dslr", "defocusgan", "generator")):
        res = _step(summary, f"train_{name}", train_one, name, model, stage, args, device, photos)
        if isinstance(res, dict) and res.get("status") == "ok":
            _step(summary, f"eval_{name}", evaluate_one, name, res["checkpoint"], args, device)
    _step(summary, "run_checks", run_checks, args, device)
    print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=1, default=float)[:6000])


if __name__ == "__main__":
    main()
