"""The correction gate's settings on the real dev data: blurred gain kept, sharp photos spared.

A single-image method runs once per image without its correction gate (its other post stages as
shipped), through the per-item pipeline ``run`` uses: on the 4 Canon dev captures (blurred) and on
sharp photos (the Canon dev ground truths, ``examples/single/scene_c``). Every setting of
:func:`dpcli.optics.correction_gate` is then applied to those outputs as the engine applies it:
``input + gate * (output - input)``. Prints per image the PSNR gain over the input (blurred) and
the PSNR against the sharp input itself, so a setting can be chosen where the result is flat across
settings and images (not at a knife edge of the dev data).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_correction_gate.py \
        [--method defocusgan_generator_small.dslr-synth]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from _common import dev_data, named_method

# (low, high, band px, window px, eps, spread px); the first is the shipped default
SETTINGS = [(0.3, 0.8, 4.0, 3, 1 / 255, 4), (0.2, 0.8, 4.0, 3, 1 / 255, 4), (0.4, 0.8, 4.0, 3, 1 / 255, 4),
            (0.3, 0.8, 4.0, 3, 1 / 255, 8), (0.3, 0.8, 4.0, 3, 0.5 / 255, 4), (0.3, 0.8, 4.0, 3, 2 / 255, 4),
            (0.3, 0.8, 2.0, 3, 1 / 255, 4), (0.3, 0.8, 8.0, 3, 1 / 255, 4), (0.3, 0.8, 4.0, 5, 1 / 255, 4),
            (0.5, 1.0, 4.0, 3, 1 / 255, 4)]


def _images(shared: Path):
    """(name, image, reference, score) for the blurred captures (reference = GT, score = the Canon
    protocol) and the sharp photos (reference = the photo itself)."""
    from dpcli.io.images import read_image
    from dpcli.metrics.image import psnr
    from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene, score_canon

    canon = shared / "data" / "canon-dpdd-gif"
    scenes = [load_canon_scene(canon, sid) for sid in list_canon_scenes(canon)]
    for sid, sc in zip(list_canon_scenes(canon), scenes):
        yield "blurred", f"canon_{sid}", sc.combined, lambda im, sc=sc: score_canon(im, sc)["psnr"]
    for sid, sc in zip(list_canon_scenes(canon), scenes):
        yield "sharp", f"canon_{sid} GT", sc.gt, lambda im, gt=sc.gt: psnr(np.clip(im, 0, 1), gt)
    example = Path(__file__).resolve().parents[1] / "examples"
    gt = read_image(example / "ground_truth" / "scene_c.png").data
    yield "sharp", "scene_c", read_image(example / "single" / "scene_c.png").data, \
        lambda im, gt=gt: psnr(np.clip(im, 0, 1), gt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="defocusgan_generator_small.dslr-synth")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from dpcli.optics import correction_gate
    from dpcli.pipeline import Source, Views, process

    shared = dev_data()
    options, chooser = named_method(args.method)
    method = chooser.for_item("dslr", False)
    session = method.session()  # the network without its correction gate: the gate is what this measures
    session.loaded = dataclasses.replace(session.loaded, correction_gate=False)
    cols, rows = [], {}
    for kind, name, image, score in _images(shared):
        done = process(Views.from_arrays(image), Source(srgb=True), options, chooser)
        base = score(image) if kind == "blurred" else 0.0
        cols.append(name)
        rows.setdefault("no gate", []).append(score(done.image) - base)
        x, y = torch.from_numpy(np.asarray(image, np.float32))[None], torch.from_numpy(done.image)[None]
        for low, high, band, window, eps, spread in SETTINGS:
            gate = correction_gate(x, y, low=low, high=high, band=band, window=window, eps=eps, spread=spread)
            label = f"{low}, {high}, {band:g}, {window}, {eps * 255:g}/255, {spread}"
            rows.setdefault(label, []).append(score((x + gate * (y - x))[0].clamp(0, 1).numpy()) - base)
        print(f"{name}: done ({done.method.name})", flush=True)
    blurred = [i for i, c in enumerate(cols) if "GT" not in c and c != "scene_c"]
    sharp = [i for i in range(len(cols)) if i not in blurred]
    print(f"\n{args.method}: blurred = PSNR gain over the input (dB), sharp = PSNR against the photo itself (dB)")
    print("| setting (low, high, band px, window px, eps, spread px) | " + " | ".join(cols)
          + " | blurred mean | sharp mean / min |")
    print("| --- " * (len(cols) + 3) + "|")
    for label, v in rows.items():
        cells = [f"{v[i]:+.2f}" if i in blurred else f"{min(v[i], 99):.1f}" for i in range(len(cols))]
        s = [min(v[i], 99) for i in sharp]
        print(f"| {label} | " + " | ".join(cells) + f" | {np.mean([v[i] for i in blurred]):+.3f} | "
              f"{np.mean(s):.1f} / {min(s):.1f} |")


if __name__ == "__main__":
    main()
