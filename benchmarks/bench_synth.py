"""Synthetic DP scene throughput: scenes per minute at 512x512 (target >= 30/min on 2 cores).

Renders scenes in worker processes (one torch thread each, as `dpdeblur synth --workers` does),
after a warm-up scene per worker (imports, photo decoding). Prints a table; ``--json`` for scripts.

    python benchmarks/bench_synth.py --scenes 12 --workers 2
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor


def _render(args: tuple) -> float:
    import torch

    from dpcli.synth.scene import SceneConfig, render_scene

    torch.set_num_threads(1)
    seed, index, camera, size, native = args
    start = time.perf_counter()
    render_scene(seed, SceneConfig(height=size, width=size, camera=camera, scale_radii=not native), index)
    return time.perf_counter() - start


def bench(camera: str, size: int, scenes: int, workers: int, native: bool) -> dict:
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_render, [(99, i, camera, size, native) for i in range(workers)]))  # warm-up
        start = time.perf_counter()
        times = list(pool.map(_render, [(1, i, camera, size, native) for i in range(scenes)]))
        wall = time.perf_counter() - start
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return dict(camera=camera, native_blur=native, size=size, workers=workers, scenes=scenes,
                scenes_per_min=60 * scenes / wall, median_s=statistics.median(times),
                iqr_s=q[2] - q[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cameras", default="dslr,phone,mixed")
    ap.add_argument("--native", action="store_true", help="also time native-resolution radii")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for camera in args.cameras.split(","):
        for native in ([False, True] if args.native else [False]):
            rows.append(bench(camera, args.size, args.scenes, args.workers, native))
    meta = dict(python=platform.python_version(), cpus=os.cpu_count(), workers=args.workers)
    if args.json:
        print(json.dumps(dict(meta=meta, rows=rows), indent=1))
        return
    print(f"synth throughput, {args.size}x{args.size}, {args.workers} workers x 1 thread, "
          f"{args.scenes} scenes after warm-up ({meta['cpus']} CPUs visible)")
    print(f"{'camera':8} {'radii':8} {'scenes/min':>10} {'median s':>9} {'IQR s':>7}")
    for r in rows:
        radii = "native" if r["native_blur"] else "scaled"
        print(f"{r['camera']:8} {radii:8} {r['scenes_per_min']:10.1f} {r['median_s']:9.2f} {r['iqr_s']:7.2f}")


if __name__ == "__main__":
    main()
