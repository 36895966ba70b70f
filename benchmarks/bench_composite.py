"""Composite methods (dpcli.methods.composite) on the real dev scenes, each part run ONCE per scene.

Phone: the 4 Pixel 4 scenes (preprocessed, GT crop alone, as bench_methods.py); dslr: the 4 Canon
DPDD GIF scenes (label corner masked). The L/R order is detected as in `dpdeblur run` (the
reversed file order is checked to orient to the same pair, so it gives the same images). Prints,
per scene, the gain over the input of every part, the registered equal blend (sRGB, zero-shot
limited to the network's local range), the same without that guard and in linear light
and the residual fusion at several temperatures; ``--write`` stores the registered composites'
mean gains in dpcli/methods/measured.json (from which `run` ranks its defaults).

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_composite.py [--domains dslr,phone]
        [--temperatures 0.6,2,8] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def scenes(shared: Path, domains: list[str]):
    """(domain, scene id, view a, view b, combined input, srgb, score fn) of the dev scenes."""
    from bench_methods import _scenes

    for row in _scenes(shared):
        if row[0] in domains:
            yield row


def main() -> None:
    import torch

    from dpcli.methods import get_method, orient
    from dpcli.methods.composite import Blend
    from dpcli.optics.orientation import orient_views

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="dslr,phone")
    ap.add_argument("--temperatures", default="0.6,2,8")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    shared = Path(os.environ.get("DPDEBLUR_SHARED", "../shared"))
    fusion = get_method("fusion_bambnet_zeroshot", device="cpu")
    blend = get_method("blend_bambnet_zeroshot", methods=fusion.methods, device="cpu")
    temps = [float(t) for t in args.temperatures.split(",")]

    class LinearBlend(Blend):  # the plain blend in linear light, for comparison only
        name, parts, weights, space = "blend_linear", blend.parts, blend.weights, "linear"

    class PlainBlend(Blend):  # without the guard (zero-shot not limited to the network's local range)
        name, parts, weights, space = "blend_plain", blend.parts, blend.weights, "srgb"

    lin = LinearBlend(methods=fusion.methods)
    plain = PlainBlend(methods=fusion.methods)
    cols = [*fusion.parts, "blend", "blend_plain", "blend_lin", *[f"fuse_T{t:g}" for t in temps]]
    print(f"{'domain':6s} {'scene':9s} {'input':>7s} " + " ".join(f"{c[:14]:>14s}" for c in cols) + "   seconds")
    gains: dict[str, dict[str, list[float]]] = {}
    for domain, sid, a, b, combined, srgb, score in scenes(shared, args.domains.split(",")):
        base = score(np.asarray(combined, np.float32))["psnr"]
        o = orient(a, b, srgb=srgb)
        o_rev = orient(b, a, srgb=srgb)
        left, right, _ = orient_views(a, b, o)
        l2, r2, _ = orient_views(b, a, o_rev)
        same_order = bool(np.array_equal(left, l2) and np.array_equal(right, r2))
        images, secs = {}, {}
        for name in fusion.parts:
            t = time.perf_counter()
            images[name] = np.clip(fusion.part(name).deblur(left, right, srgb=srgb).image, 0, 1)
            secs[name] = time.perf_counter() - t
        out = {n: images[n] for n in fusion.parts}
        out["blend"] = blend.combine(left, right, images, srgb=srgb)
        out["blend_lin"] = lin.combine(left, right, images, srgb=srgb)
        out["blend_plain"] = plain.combine(left, right, images, srgb=srgb)
        for temp in temps:
            fusion.temperature = temp
            t = time.perf_counter()
            out[f"fuse_T{temp:g}"] = fusion.combine(left, right, images, srgb=srgb)
            secs["fusion"] = time.perf_counter() - t
        row = {}
        for c in cols:
            row[c] = score(np.clip(out[c], 0, 1))["psnr"] - base
            gains.setdefault(domain, {}).setdefault(c, []).append(row[c])
        print(f"{domain:6s} {sid:9s} {base:7.2f} " + " ".join(f"{row[c]:+14.2f}" for c in cols)
              + "   " + ", ".join(f"{k.split('.')[0]} {v:.1f}" for k, v in secs.items())
              + ("" if same_order else "   (reversed file order orients differently!)"), flush=True)
    for domain, by in gains.items():
        print(f"mean {domain:6s}        " + " ".join(f"{np.mean(by[c]):+14.2f}" for c in cols))
        print(f"worst {domain:6s}       " + " ".join(f"{np.min(by[c]):+14.2f}" for c in cols))
    if args.write:
        path = Path(__file__).resolve().parents[1] / "dpcli" / "methods" / "measured.json"
        data = json.loads(path.read_text())
        fuse_col = f"fuse_T{type(fusion).temperature:g}"
        for domain, by in gains.items():
            data.setdefault(blend.name, {})[domain] = round(float(np.mean(by["blend"])), 2)
            if fuse_col in by:
                data.setdefault(fusion.name, {})[domain] = round(float(np.mean(by[fuse_col])), 2)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
