"""Speed of the classical DP estimators (defocus map, joint Wiener deblurring) on 2 CPU threads.

Prints a table: median and IQR over repeats after one warm-up, fixed seed, torch threads.
Target (issue 5): the classical defocus map of a 1680x1120 pair within seconds on 2 cores.

    python benchmarks/bench_defocus.py [--repeats 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from dpcli.classical import deblur_pair_classical, estimate_defocus_classical
from dpcli.optics import blur, dp_kernels


def _pair(h: int, w: int, radius: float, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, channels, h // 8, w // 8, generator=g)
    sharp = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    kl, kr = dp_kernels(torch.tensor([radius]))
    return blur(sharp, kl[None])[0], blur(sharp, kr[None])[0]


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up (kernel banks, FFT plans)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return statistics.median(times), q[2] - q[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [
        ("defocus map, DPDD size 1680x1120 RGB, r in [-24, 24]", (1120, 1680, 8.0),
         lambda l, r: estimate_defocus_classical(l, r, min_radius=-24, max_radius=24)),
        ("defocus map, DPDD size 1680x1120 RGB, r in [-12, 12]", (1120, 1680, 5.0),
         lambda l, r: estimate_defocus_classical(l, r, min_radius=-12, max_radius=12)),
        ("defocus map, Pixel 4 view 2016x1512 grey, r in [-12, 12]", (1512, 2016, 5.0),
         lambda l, r: estimate_defocus_classical(l[:1], r[:1], min_radius=-12, max_radius=12)),
        ("joint Wiener deblur, 1680x1120 RGB, parametric, 168-px patches", (1120, 1680, 5.0),
         lambda l, r: deblur_pair_classical(l, r)),
    ]
    rows = []
    for name, (h, w, radius), fn in cases:
        left, right = _pair(h, w, radius)
        med, iqr = _time(lambda: fn(left, right), args.repeats)
        rows.append({"case": name, "median_s": med, "iqr_s": iqr, "mpix": h * w / 1e6})
    print(f"threads={args.threads} torch={torch.__version__} cpu={platform.processor() or platform.machine()} "
          f"load={os.getloadavg()[0]:.1f}")
    print(f"{'case':<66} {'median s':>9} {'IQR s':>7} {'s/MP':>6}")
    for r in rows:
        print(f"{r['case']:<66} {r['median_s']:9.2f} {r['iqr_s']:7.2f} {r['median_s'] / r['mpix']:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
