"""Zero-shot MPI deblurring on the Pixel 4 scenes: quality per stage, time and peak RSS.

Two modes (both print a table; ``--json`` writes the rows):

* quality (default): every scene in ``--scenes`` through ``zeroshot_deblur`` on the 1344x1008
  GT crop with ``--context`` px (default 64) of the full views around it, so its borders are
  deblurred with their surroundings as a user's full-view run would. Scored on the crop: PSNR /
  SSIM / MAE after each stage that ran (init, G_D, kernels; ``--output-stage`` stops the
  pipeline early) + Spearman of the output's defocus map vs the GT map on valid pixels, wall
  time, seconds per stage (init = stage-1 layers + fusion, G_D, G_F + readout) and peak RSS.
  ``--save DIR`` writes every stage image as ``SCENE_STAGE.npy`` (exact before/after checks).
* ``--crop WxH`` (or a side): a central crop instead of the GT crop; with ``--time-budget`` the
  table's seconds against the budget is the budget check (issue 17: within 20 %).
* ``--compare-schedules``: fast vs paper schedule on ONE scene (optionally a central ``--crop``,
  since the paper schedule takes hours on 2 CPU cores), time and PSNR of both.

Examples:
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_zeroshot.py --time-budget 300
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_zeroshot.py --kernels --time-budget 300
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_zeroshot.py --time-budget 300 --context 0  # the crop alone
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_zeroshot.py --output-stage init --kernels  # stage 1 only
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_zeroshot.py --crop 384x256 --time-budget 20 --context 0
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_zeroshot.py --compare-schedules --crop 336
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import peak_rss_gib


def _crop_size(text: str | None) -> tuple[int, int] | None:
    """"384x256" (width x height) or "336" (a square) -> (height, width)."""
    if not text:
        return None
    w, _, h = text.lower().partition("x")
    return (int(h or w), int(w))


def run_scene(pixel4: Path, sid: str, schedule: str, budget: float | None, kernels: bool,
              crop: tuple[int, int] | None, threads: int, overrides: dict, context: int = 0,
              save: Path | None = None) -> dict:
    from dpcli.metrics import spearman
    from dpcli.metrics.image import image_metrics
    from dpcli.metrics.protocols import PIXEL4_CROP, load_pixel4_scene
    from dpcli.optics import load_measured_kernels
    from dpcli.zeroshot import make_config, zeroshot_deblur

    torch.set_num_threads(threads)
    sc = load_pixel4_scene(pixel4, sid)  # swap_lr=True: the Pixel 4 "left" file is our right view
    r0, r1, c0, c1 = PIXEL4_CROP
    y0, y1, x0, x1 = 0, r1 - r0, 0, c1 - c0
    if crop:
        cy, cx = (r1 - r0) // 2, (c1 - c0) // 2
        y0, y1, x0, x1 = cy - crop[0] // 2, cy + crop[0] // 2, cx - crop[1] // 2, cx + crop[1] // 2
    m = min(int(context), r0, c0)  # the views around the GT crop, deblurred and then cut away
    left = sc.left[:, r0 + y0 - m : r0 + y1 + m, c0 + x0 - m : c0 + x1 + m]
    right = sc.right[:, r0 + y0 - m : r0 + y1 + m, c0 + x0 - m : c0 + x1 + m]
    inner = (..., slice(m, m + y1 - y0), slice(m, m + x1 - x0))
    gt = sc.gt[:, y0:y1, x0:x1]
    measured = None
    grid = overrides.pop("grid", (6, 8) if not crop else (2, 2))
    if kernels:
        cal = pixel4 / "calibration"
        fl, fr = load_measured_kernels(cal / "blur_kernels_left.npy", cal / "blur_kernels_right.npy")
        measured = (fr.numpy(), fl.numpy())  # swapped with the views, explicitly
        if crop:
            raise SystemExit("--kernels needs the full crop (the 6x8 calibration grid)")
    cfg = make_config(schedule, time_budget=budget, grid=tuple(grid), **overrides)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = zeroshot_deblur(left, right, cfg, measured_kernels=measured,
                              kernel_roi=(m, m + y1 - y0, m, m + x1 - x0))
    seconds = time.perf_counter() - start
    row = {"scene": sid, "schedule": schedule, "kernel_src": "measured" if kernels else "parametric",
           "size": f"{x1 - x0}x{y1 - y0}+{m}", "seconds": round(seconds, 1), "timings": res.timings,
           "budget": budget, "peak_rss_mb": round(peak_rss_gib() * 1024, 1), "info": res.info}
    row["none"] = image_metrics(((left + right) / 2)[inner], gt)
    for stage, img in res.stage_images.items():
        row[stage] = image_metrics(img[inner], gt)
        if save:
            save.mkdir(parents=True, exist_ok=True)
            np.save(save / f"{sid}_{row['kernel_src']}_{stage}.npy", img[inner])
    row["spearman"] = spearman(res.defocus[inner], sc.gt_defocus[y0:y1, x0:x1], sc.valid[y0:y1, x0:x1])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixel4", type=Path, default=Path(os.environ.get("DPDEBLUR_SHARED", "../shared")) / "data" / "pixel4")
    ap.add_argument("--scenes", default="002,006,009,013")
    ap.add_argument("--schedule", default="fast")
    ap.add_argument("--time-budget", type=float, default=None)
    ap.add_argument("--kernels", action="store_true", help="use the measured calibration kernels")
    ap.add_argument("--compare-schedules", action="store_true")
    ap.add_argument("--crop", default=None, help="central crop WxH or side (px) instead of the full GT crop")
    ap.add_argument("--output-stage", default=None, choices=("init", "defocus", "kernels"),
                    help="stop the pipeline after this stage (default: the config's, kernels)")
    ap.add_argument("--save", type=Path, default=None, help="write every stage image (npy) here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context", type=int, default=64,
                    help="px of the full views around the scored crop that are deblurred too (0: the crop alone)")
    ap.add_argument("--set", action="append", default=[], help="config override KEY=JSON")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.output_stage:
        overrides["output_stage"] = args.output_stage
    crop = _crop_size(args.crop)
    rows = []
    if args.compare_schedules:
        sid = args.scenes.split(",")[0]
        for schedule in ("fast", "paper"):
            rows.append(run_scene(args.pixel4, sid, schedule, None, args.kernels, crop, args.threads,
                                  dict(overrides), args.context, args.save))
            _print(rows[-1:])
    else:
        for sid in args.scenes.split(","):
            rows.append(run_scene(args.pixel4, sid, args.schedule, args.time_budget, args.kernels, crop,
                                  args.threads, dict(overrides), args.context, args.save))
            print(json.dumps(rows[-1], default=float), flush=True)
            _print(rows[-1:])
    _print(rows, mean=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


STAGES = ("none", "init", "defocus", "kernels")
# seconds per pipeline stage in the table: stage 1 (layers + fusion), G_D, G_F (+ its readout)
STAGE_SECONDS = {"s init": ("init", "fusion"), "s G_D": ("defocus",), "s G_F": ("kernels", "readout")}


def _seconds(row: dict, keys: tuple[str, ...]) -> float | None:
    ran = [row["timings"][k] for k in keys if k in row["timings"]]
    return sum(ran) if ran else None


def _print(rows: list[dict], mean: bool = False) -> None:
    def cell(r: dict, s: str) -> str:
        return (f"{r[s]['psnr']:7.2f}/{r[s]['ssim']:.3f}/{r[s]['mae']:.4f}" if s in r else "not run").rjust(24)

    def secs(value: float | None) -> str:
        return f"{value:7.1f}" if value is not None else f"{'-':>7}"

    head = f"{'scene':>6} {'sched':>6} {'kernels':>10} {'size':>10} {'s':>7} {'budget':>7} " + \
        " ".join(f"{k:>7}" for k in STAGE_SECONDS) + f" {'RSS MB':>7} " + \
        " ".join(f"{s + ' PSNR/SSIM/MAE':>24}" for s in STAGES) + f" {'rho':>6}"
    print(head)
    for r in rows:
        print(f"{r['scene']:>6} {r['schedule']:>6} {r['kernel_src']:>10} {r['size']:>10} {r['seconds']:7.1f} "
              f"{secs(r.get('budget'))} " + " ".join(secs(_seconds(r, k)) for k in STAGE_SECONDS.values()) +
              f" {r['peak_rss_mb']:7.0f} " + " ".join(cell(r, s) for s in STAGES) + f" {r['spearman']:6.3f}")
    if mean and len(rows) > 1:
        ran = [s for s in STAGES if all(s in r for r in rows)]

        def avg(key: str, s: str) -> float:
            return float(np.mean([r[s][key] for r in rows]))

        cells = " ".join((f"{avg('psnr', s):7.2f}/{avg('ssim', s):.3f}/{avg('mae', s):.4f}" if s in ran
                          else "not run").rjust(24) for s in STAGES)
        stage_means = []
        for keys in STAGE_SECONDS.values():
            vals = [_seconds(r, keys) for r in rows]
            stage_means.append(secs(float(np.mean(vals)) if all(v is not None for v in vals) else None))
        print(f"{'mean':>6} {'':>6} {'':>10} {'':>10} {np.mean([r['seconds'] for r in rows]):7.1f} "
              f"{secs(rows[0].get('budget'))} " + " ".join(stage_means) +
              f" {max(r['peak_rss_mb'] for r in rows):7.0f} {cells} {np.mean([r['spearman'] for r in rows]):6.3f}")


if __name__ == "__main__":
    main()
