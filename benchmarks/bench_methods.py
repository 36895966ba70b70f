"""Every registered DP method on the real dev scenes of each domain, both file orders, as `run` uses it.

Phone: the 4 Pixel 4 scenes, preprocessed (black level, 14-bit, white-sheet gain), the GT crop
alone (what `dpdeblur run CROPS -o OUT --linear` sees). Dslr: the 4 Canon DPDD GIF scenes (8-bit
sRGB), label corner masked. Each pair is given in both file orders and goes through the very
per-item pipeline `run` uses (dpcli.pipeline.process: L/R order detected, the method, post). Prints PSNR / SSIM, the gain over the input and seconds per
scene; ``--write`` stores the gains of the training-free methods in dpcli/methods/measured.json,
from which `run` picks its defaults (weights report theirs in dpcli/weights/manifest.json).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_methods.py [--methods zeroshot,classical] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def _scenes(shared: Path):
    from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene, load_pixel4_scene, score_canon, score_pixel4

    pixel = shared / "data" / "pixel4"
    for sid in ["002", "006", "009", "013"]:
        sc = load_pixel4_scene(pixel, sid, swap_lr=False)  # file order
        left, right = np.clip(sc.crop_view(sc.left), 0, 1), np.clip(sc.crop_view(sc.right), 0, 1)
        yield "phone", sid, left, right, sc.crop_view(sc.combined), False, (lambda img, sc=sc: score_pixel4(img, sc))
    canon = shared / "data" / "canon-dpdd-gif"
    for sid in list_canon_scenes(canon):
        sc = load_canon_scene(canon, sid)
        yield "dslr", f"canon_{sid}", sc.view_a, sc.view_b, sc.combined, True, (lambda img, sc=sc: score_canon(img, sc))


def main() -> None:
    from dpcli.methods import get_method
    from dpcli.pipeline import Options, Source, Views, process

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="zeroshot,classical")
    ap.add_argument("--write", action="store_true", help="store the gains in dpcli/methods/measured.json")
    ap.add_argument("--domains", default="phone,dslr", help="comma list: phone (Pixel 4), dslr (Canon)")
    args = ap.parse_args()
    shared = Path(os.environ.get("DPDEBLUR_SHARED", "../shared"))
    names = args.methods.split(",")
    rows: dict[tuple[str, str], list] = {}
    print(f"{'method':12s} {'domain':6s} {'scene':9s} {'order':8s} {'L/R':28s} {'PSNR':>7s} {'input':>7s} "
          f"{'gain':>6s} {'SSIM':>6s} {'s':>6s}")
    for domain, sid, a, b, combined, srgb, score in _scenes(shared):
        if domain not in args.domains.split(","):
            continue
        base = score(np.asarray(combined, np.float32))  # the input: the combined capture, as every protocol scores it
        for name in names:
            method = get_method(name, device="cpu")
            for order, (left, right) in (("files", (a, b)), ("reversed", (b, a))):
                t = time.perf_counter()
                done = process(Views.from_arrays(left, right), Source(srgb=srgb), Options(method=method))
                img, o = done.image, done.orientation
                sec = time.perf_counter() - t
                s = score(img)
                rows.setdefault((name, domain), []).append((s["psnr"] - base["psnr"], s["ssim"] - base["ssim"]))
                print(f"{name:12s} {domain:6s} {sid:9s} {order:8s} {o.describe():28s} {s['psnr']:7.2f} "
                      f"{base['psnr']:7.2f} {s['psnr'] - base['psnr']:+6.2f} {s['ssim']:6.3f} {sec:6.1f}", flush=True)
    gains = {}
    for (name, domain), vals in rows.items():
        g = float(np.mean([v[0] for v in vals]))
        print(f"mean {name} {domain}: {g:+.2f} dB, SSIM {np.mean([v[1] for v in vals]):+.3f}")
        gains.setdefault(name, {})[domain] = round(g, 2)
    if args.write:
        path = Path(__file__).resolve().parents[1] / "dpcli" / "methods" / "measured.json"
        data = json.loads(path.read_text())
        for name, by_domain in gains.items():
            data.setdefault(name, {}).update(by_domain)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
