"""The focus gate's settings on the real dev scenes: how much of a DP method's gain each keeps.

A DP method runs once per scene without its gate (the network's post stage otherwise as shipped),
then every setting of :func:`dpcli.optics.focus_gate` (low / high disparity in px, window radius)
is applied to that one output as the engine applies it: ``mean + gate * (output - mean)``, ``mean``
the pair's mean view. Prints per scene and mean PSNR gain over the input (the combined capture)
and the gate's mean opening, so a setting can be chosen where the result is
flat across settings and scenes (not at a knife edge of the 4 dev scenes).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_focus_gate.py [--method bambnet_deblur_small.dslr-synth]
        [--domains dslr,phone]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from _common import dev_data, named_method

SETTINGS = [(0.05, 0.3, 7, (1, 2, 4)), (0.1, 0.5, 7, (1, 2, 4)), (0.2, 0.8, 7, (1, 2, 4)), (0.1, 0.5, 11, (1, 2, 4)),
            (0.3, 1.0, 7, (1, 2, 4)), (0.1, 0.5, 7, (1,)), (0.1, 0.5, 7, (1, 2))]


def _scenes(shared: Path, domains: list[str]):
    from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene, load_pixel4_scene, score_canon, score_pixel4

    if "dslr" in domains:
        canon = shared / "data" / "canon-dpdd-gif"
        for sid in list_canon_scenes(canon):
            sc = load_canon_scene(canon, sid)
            yield "dslr", f"canon_{sid}", sc.view_a, sc.view_b, sc.combined, True, (lambda im, sc=sc: score_canon(im, sc))
    if "phone" in domains:
        pixel = shared / "data" / "pixel4"
        for sid in ["002", "006", "009", "013"]:
            sc = load_pixel4_scene(pixel, sid, swap_lr=False)
            left, right = np.clip(sc.crop_view(sc.left), 0, 1), np.clip(sc.crop_view(sc.right), 0, 1)
            yield "phone", sid, left, right, sc.crop_view(sc.combined), False, (lambda im, sc=sc: score_pixel4(im, sc))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="bambnet_deblur_small.dslr-synth")
    ap.add_argument("--domains", default="dslr")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from dpcli.optics.disparity import FOCUS_GATE_DEFAULTS, focus_gate
    from dpcli.pipeline import Source, Views, process

    shared = dev_data()
    options, chooser = named_method(args.method)
    rows: dict[tuple, list[float]] = {}
    opened: dict[tuple, list[float]] = {}
    names = []
    for domain, name, a, b, combined, srgb, score in _scenes(shared, args.domains.split(",")):
        method = chooser.for_item(domain, True)
        if hasattr(method, "session"):  # the network (a TTA wrapper hands on its own) without its gate:
            session = method.session()  # the gate is what this measures
            session.loaded = dataclasses.replace(session.loaded, focus_gate=False)
        done = process(Views.from_arrays(a, b), Source(srgb=srgb), options, chooser)
        base = score(combined)["psnr"]
        names.append(name)
        rows.setdefault(("ungated",), []).append(score(done.image)["psnr"] - base)
        # the gate and the mean view do not depend on which view is left
        lt, rt = torch.from_numpy(np.asarray(a, np.float32))[None], torch.from_numpy(np.asarray(b, np.float32))[None]
        inp = (lt[0] + rt[0]) / 2  # what the engine's post stage falls back to: the pair's mean view
        for setting in SETTINGS:
            low, high, window, scales = setting
            gate = focus_gate(lt, rt, srgb=srgb, low=low, high=high, window=window, scales=scales,
                              eps=FOCUS_GATE_DEFAULTS["eps"], spread=FOCUS_GATE_DEFAULTS["spread"])[0]
            out = (inp + gate * (torch.from_numpy(done.image) - inp)).clamp(0, 1).numpy()
            rows.setdefault(setting, []).append(score(out)["psnr"] - base)
            opened.setdefault(setting, []).append(float(gate.mean()))
        print(f"{name}: done ({done.method.name})", flush=True)
    print(f"\n{args.method}, PSNR gain over the input (dB); gate = mean opening")
    print("| setting (low, high px, window px, scales) | " + " | ".join(names) + " | mean | gate |")
    print("| --- " * (len(names) + 3) + "|")
    for key, gains in rows.items():
        label = "no gate" if key == ("ungated",) else f"{key[0]}, {key[1]}, {key[2]}, {'/'.join(map(str, key[3]))}"
        gate = f"{np.mean(opened[key]):.2f}" if key in opened else ""
        print(f"| {label} | " + " | ".join(f"{g:+.2f}" for g in gains) + f" | {np.mean(gains):+.2f} | {gate} |")


if __name__ == "__main__":
    main()
