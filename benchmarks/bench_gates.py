"""The post-step gates' settings on the real dev scenes: ``focus`` (DP pairs: the correction kept
where the pair is out of focus) and ``correction`` (single photos: the correction kept where it
restores missing detail). Each runs the method once per image without the gate it measures, then
applies every setting of the gate to that output as the engine applies it, and prints the gain per
image and in the mean, so a setting can be chosen where the result is flat (not at a knife edge of
the 4 dev scenes).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_gates.py focus [--method bambnet_deblur_small.dslr-synth]
        [--domains dslr,phone]
    DPDEBLUR_SHARED=../shared python benchmarks/bench_gates.py correction [--method defocusgan_generator_small.dslr-synth]
"""
from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np
import torch
from _common import ROOT, dev_scenes, named_method, subcommands

FOCUS_DOC = """The focus gate's settings on the real dev scenes: how much of a DP method's gain each keeps.

A DP method runs once per scene without its focus gate (its other post steps as shipped),
then every setting of :func:`dpcli.optics.focus_gate` (low / high disparity in px, window radius)
is applied to that one output as the post step applies it: ``mean + gate * (output - mean)``, ``mean``
the pair's mean view. Prints per scene and mean PSNR gain over the input (the combined capture)
and the gate's mean opening, so a setting can be chosen where the result is
flat across settings and scenes (not at a knife edge of the 4 dev scenes).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_gates.py focus [--method bambnet_deblur_small.dslr-synth]
        [--domains dslr,phone]
"""

CORRECTION_DOC = """The correction gate's settings on the real dev data: blurred gain kept, sharp photos spared.

A single-image method runs once per image without its correction gate (its other post steps as
shipped), through the per-item pipeline ``run`` uses: on the 4 Canon dev captures (blurred) and on
sharp photos (the Canon dev ground truths, ``examples/single/scene_c``). Every setting of
:func:`dpcli.optics.correction_gate` is then applied to those outputs as the post step applies it:
``input + gate * (output - input)``. Prints per image the PSNR gain over the input (blurred) and
the PSNR against the sharp input itself, so a setting can be chosen where the result is flat across
settings and images (not at a knife edge of the dev data).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_gates.py correction \
        [--method defocusgan_generator_small.dslr-synth]
"""

FOCUS_SETTINGS = [(0.05, 0.3, 7, (1, 2, 4)), (0.1, 0.5, 7, (1, 2, 4)), (0.2, 0.8, 7, (1, 2, 4)), (0.1, 0.5, 11, (1, 2, 4)),
            (0.3, 1.0, 7, (1, 2, 4)), (0.1, 0.5, 7, (1,)), (0.1, 0.5, 7, (1, 2))]

# (low, high, band px, window px, eps, spread px); the first is the shipped default
CORRECTION_SETTINGS = [(0.3, 0.8, 4.0, 3, 1 / 255, 4), (0.2, 0.8, 4.0, 3, 1 / 255, 4), (0.4, 0.8, 4.0, 3, 1 / 255, 4),
            (0.3, 0.8, 4.0, 3, 1 / 255, 8), (0.3, 0.8, 4.0, 3, 0.5 / 255, 4), (0.3, 0.8, 4.0, 3, 2 / 255, 4),
            (0.3, 0.8, 2.0, 3, 1 / 255, 4), (0.3, 0.8, 8.0, 3, 1 / 255, 4), (0.3, 0.8, 4.0, 5, 1 / 255, 4),
            (0.5, 1.0, 4.0, 3, 1 / 255, 4)]


def _without(post: tuple[str, ...], name: str) -> tuple[str, ...]:
    """A weights entry's post list without the step ``name`` (the step this measures)."""
    return tuple(step for step in post if step.partition(":")[0] != name)


def focus(argv: list[str]) -> None:
    """The focus gate's settings on the real dev scenes: how much of a DP method's gain each keeps."""
    ap = argparse.ArgumentParser(prog="bench_gates.py focus", description=FOCUS_DOC.splitlines()[0])
    ap.add_argument("--method", default="bambnet_deblur_small.dslr-synth")
    ap.add_argument("--domains", default="dslr")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from dpcli.optics.disparity import FOCUS_GATE_DEFAULTS, focus_gate
    from dpcli.pipeline import Source, Views, process

    options, chooser = named_method(args.method)
    rows: dict[tuple, list[float]] = {}
    opened: dict[tuple, list[float]] = {}
    names = []
    for domain, name, a, b, combined, srgb, score, _ in dev_scenes(domains=args.domains.split(",")):
        method = chooser.for_item(domain, True)
        if hasattr(method, "session"):  # the network (a TTA wrapper hands on its own) without its gate:
            session = method.session()  # the gate is what this measures
            session.loaded = dataclasses.replace(session.loaded, post=_without(session.loaded.post, "focus_gate"))
        done = process(Views.from_arrays(a, b), Source(srgb=srgb), options, chooser)
        base = score(combined)["psnr"]
        names.append(name)
        rows.setdefault(("ungated",), []).append(score(done.image)["psnr"] - base)
        # the gate and the mean view do not depend on which view is left
        lt, rt = torch.from_numpy(np.asarray(a, np.float32))[None], torch.from_numpy(np.asarray(b, np.float32))[None]
        inp = (lt[0] + rt[0]) / 2  # what the focus-gate post step falls back to: the pair's mean view
        for setting in FOCUS_SETTINGS:
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


def _correction_images():
    """(kind, name, image, score) for the blurred captures (score: PSNR by the Canon protocol) and the
    sharp photos (the Canon dev ground truths, ``examples/single/scene_c``; score: PSNR against the
    photo itself)."""
    from dpcli.io.images import read_image
    from dpcli.metrics.image import psnr

    canon = list(dev_scenes(domains=("dslr",)))
    for dev in canon:
        yield "blurred", dev.name, dev.combined, lambda im, score=dev.score: score(im)["psnr"]
    for dev in canon:
        yield "sharp", f"{dev.name} GT", dev.scene.gt, lambda im, gt=dev.scene.gt: psnr(np.clip(im, 0, 1), gt)
    gt = read_image(ROOT / "examples" / "ground_truth" / "scene_c.png").data
    yield "sharp", "scene_c", read_image(ROOT / "examples" / "single" / "scene_c.png").data, \
        lambda im, gt=gt: psnr(np.clip(im, 0, 1), gt)


def correction(argv: list[str]) -> None:
    """The correction gate's settings on the real dev data: blurred gain kept, sharp photos spared."""
    ap = argparse.ArgumentParser(prog="bench_gates.py correction", description=CORRECTION_DOC.splitlines()[0])
    ap.add_argument("--method", default="defocusgan_generator_small.dslr-synth")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from dpcli.optics import correction_gate
    from dpcli.pipeline import Source, Views, process

    options, chooser = named_method(args.method)
    method = chooser.for_item("dslr", False)
    session = method.session()  # the network without its correction gate: the gate is what this measures
    session.loaded = dataclasses.replace(session.loaded, post=_without(session.loaded.post, "correction_gate"))
    cols, rows = [], {}
    for kind, name, image, score in _correction_images():
        done = process(Views.from_arrays(image), Source(srgb=True), options, chooser)
        base = score(image) if kind == "blurred" else 0.0
        cols.append(name)
        rows.setdefault("no gate", []).append(score(done.image) - base)
        x, y = torch.from_numpy(np.asarray(image, np.float32))[None], torch.from_numpy(done.image)[None]
        for low, high, band, window, eps, spread in CORRECTION_SETTINGS:
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
    subcommands({"focus": focus, "correction": correction})
