"""The methods on the real dev scenes of each domain, as `run` uses them: every method alone
(``methods``), the composite methods (``composite``), test-time augmentation (``tta``). Each prints
its tables; ``--write`` stores what `run` ranks its defaults by in dpcli/methods/measured.json.

    DPDEBLUR_SHARED=../shared python benchmarks/bench_dev.py methods [--methods zeroshot,classical] [--write]
    DPDEBLUR_SHARED=../shared python benchmarks/bench_dev.py composite [--domains dslr,phone] [--temperatures 0.6,2,8] [--write]
    DPDEBLUR_SHARED=../shared python benchmarks/bench_dev.py tta [--pair NAME] [--single NAME] [--skip pair|single] [--write]
    DPDEBLUR_SHARED=../shared python benchmarks/bench_dev.py bf16 [--write]

The dev scenes (``_common.dev_scenes``): phone = the 4 Pixel 4 scenes, preprocessed, the GT crop
alone; dslr = the 4 Canon DPDD GIF scenes (8-bit sRGB), label corner masked.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import dev_scenes, subcommands, update_measured

METHODS_DOC = """Every registered DP method on the real dev scenes of each domain, both file orders, as `run` uses it.

Phone: the 4 Pixel 4 scenes, preprocessed (black level, 14-bit, white-sheet gain), the GT crop
alone (what `dpdeblur run CROPS -o OUT --linear` sees). Dslr: the 4 Canon DPDD GIF scenes (8-bit
sRGB), label corner masked. Each pair is given in both file orders and goes through the very
per-item pipeline `run` uses (dpcli.pipeline.process: L/R order detected, the method, post). Prints PSNR / SSIM, the gain over the input and seconds per
scene; ``--write`` stores the gains of the training-free methods in dpcli/methods/measured.json,
from which `run` picks its defaults (weights report theirs in dpcli/weights/manifest.json).

    DPDEBLUR_SHARED=../shared python benchmarks/bench_dev.py methods [--methods zeroshot,classical] [--write]
"""

COMPOSITE_DOC = """Composite methods (dpcli.methods.composite) on the real dev scenes, each part run ONCE per scene.

Phone: the 4 Pixel 4 scenes (preprocessed, GT crop alone, as ``methods``); dslr: the 4 Canon
DPDD GIF scenes (label corner masked). The L/R order is detected as in `dpdeblur run` (the
reversed file order is checked to orient to the same pair, so it gives the same images). Prints,
per scene, the gain over the input of every part, the registered equal blend (sRGB, zero-shot
limited to the network's local range), the same without that guard and in linear light
and the residual fusion at several temperatures; ``--write`` stores the registered composites'
mean gains in dpcli/methods/measured.json (from which `run` ranks its defaults).

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_dev.py composite [--domains dslr,phone]
        [--temperatures 0.6,2,8] [--write]
"""

TTA_DOC = """Test-time augmentation (dpcli.methods.tta) of the networks on the 4 Canon dev scenes: gain and cost.

DP (``--pair``, default the weights `run` picks for colour pairs): the network runs ONCE on each of the 8 transforms
(vertical flip x horizontal flip x L/R exchange) of the pair in its file order; since the
transforms of the reversed order (b, a) are the same 8 pairs, every variant of both file orders
is an average of these outputs: no TTA (files = identity, reversed = the exchange), TTA-2
(identity + vertical flip), TTA-4 (the 4 sign-keeping transforms), TTA-8 (all: the same image for
both orders), and `run`'s detected L/R order without and with TTA-4 (what ``--tta`` runs). Single
(``--single``, default the weights `run` picks for colour photos): the 8 dihedral transforms of the combined view; TTA-1, TTA-2 (0 + 180 deg), TTA-4 (rotations),
TTA-8. Prints per-scene PSNR gains over the input and seconds per pass; --write stores what TTA adds
(pairs: TTA-4 in the detected order; single: TTA-8) in dpcli/methods/measured.json ("tta" section), which decide the default (dpcli.methods.tta.tta_worth).

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_dev.py tta [--pair NAME] [--single NAME] [--write]
"""


def methods(argv: list[str]) -> None:
    """Every registered DP method on the real dev scenes of each domain, both file orders, as `run` uses it."""
    from dpcli.methods import get_method
    from dpcli.pipeline import Options, Source, Views, process

    ap = argparse.ArgumentParser(prog="bench_dev.py methods", description=METHODS_DOC.splitlines()[0])
    ap.add_argument("--methods", default="zeroshot,classical")
    ap.add_argument("--domains", default="phone,dslr", help="comma list: phone (Pixel 4), dslr (Canon)")
    ap.add_argument("--write", action="store_true", help="store the gains in dpcli/methods/measured.json")
    args = ap.parse_args(argv)
    names = args.methods.split(",")
    rows: dict[tuple[str, str], list] = {}
    print(f"{'method':12s} {'domain':6s} {'scene':9s} {'order':8s} {'L/R':28s} {'PSNR':>7s} {'input':>7s} "
          f"{'gain':>6s} {'SSIM':>6s} {'s':>6s}")
    for domain, sid, a, b, combined, srgb, score, _ in dev_scenes(domains=args.domains.split(",")):
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
        def add(data: dict) -> None:
            for name, by_domain in gains.items():
                data.setdefault(name, {}).update(by_domain)

        print(f"wrote {update_measured(add)}")


def composite(argv: list[str]) -> None:
    """Composite methods (dpcli.methods.composite) on the real dev scenes, each part run ONCE per scene."""
    import torch

    from dpcli.methods import get_method, orient
    from dpcli.methods.composite import Blend
    from dpcli.optics.orientation import orient_views

    ap = argparse.ArgumentParser(prog="bench_dev.py composite", description=COMPOSITE_DOC.splitlines()[0])
    ap.add_argument("--domains", default="dslr,phone")
    ap.add_argument("--temperatures", default="0.6,2,8")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
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
    for domain, sid, a, b, combined, srgb, score, _ in dev_scenes(domains=args.domains.split(",")):
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
        fuse_col = f"fuse_T{type(fusion).temperature:g}"

        def add(data: dict) -> None:
            for domain, by in gains.items():
                data.setdefault(blend.name, {})[domain] = round(float(np.mean(by["blend"])), 2)
                if fuse_col in by:
                    data.setdefault(fusion.name, {})[domain] = round(float(np.mean(by[fuse_col])), 2)

        print(f"wrote {update_measured(add)}")

BF16_DOC = """The colour defaults in bf16 against fp32, through `run`'s per-item path, on the 4 Canon dev scenes.

Each default (colour DP pairs, colour photos) runs every scene with its networks in fp32 and in
bf16 (``--precision``; on a CPU without AVX-512 BF16 / AMX, bf16 is emulated: the same rounding,
about 9x the time): the blurred scene (the pair; the combined capture as a photo) and its sharp
ground truth (as an in-focus pair, left = right; as a photo). Prints each PSNR in both and the
change; ``--write`` stores per network weights the mean change on the blurred scenes and the worst
change of all in dpcli/methods/measured.json ("bf16"), from which ``--precision auto`` runs a
network in bf16 on CPUs that have it only where no scene lost more than 0.02 dB
(dpcli.methods.network.bf16_harmless).

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_dev.py bf16 [--write]
"""


def bf16(argv: list[str]) -> None:
    """The colour defaults in bf16 against fp32 on the Canon dev scenes (module docstring)."""
    import torch
    from _common import deblur_as_run

    from dpcli.methods import default_method

    ap = argparse.ArgumentParser(prog="bench_dev.py bf16", description=BF16_DOC.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    cache: dict = {}
    changes: dict[str, dict[str, list[float]]] = {}
    print(f"{'scene':8s} {'input':14s} {'fp32':>8s} {'bf16':>8s} {'change':>8s}  network")
    for dev in dev_scenes(domains=("dslr",)):
        gt = dev.scene.gt
        for label, left, right, blurred in (("pair", dev.a, dev.b, True), ("photo", dev.combined, None, True),
                                            ("sharp pair", gt, gt.copy(), False), ("sharp photo", gt, None, False)):
            method = default_method("dslr", right is not None)
            psnr = {}
            for precision in ("fp32", "bf16"):
                out, _ = deblur_as_run("auto", left, right, srgb=True, domain="dslr", cache=cache, precision=precision)
                psnr[precision] = dev.score(np.clip(out, 0, 1))["psnr"]  # against the ground truth, label masked
            change = 0.0 if psnr["fp32"] == psnr["bf16"] else psnr["bf16"] - psnr["fp32"]
            network = _network_of(method)
            changes.setdefault(network, {"blurred": [], "all": []})
            changes[network]["all"].append(change)
            if blurred:
                changes[network]["blurred"].append(change)
            print(f"{dev.name:8s} {label:14s} {psnr['fp32']:8.3f} {psnr['bf16']:8.3f} {change:+8.3f}  {network}", flush=True)
    record = {name: {"dslr": {"mean_db": round(float(np.mean(c["blurred"])), 4), "worst_db": round(float(min(c["all"])), 4),
                              "scenes": len(c["blurred"])}} for name, c in changes.items()}
    for name, r in record.items():
        print(f"{name}: mean change {r['dslr']['mean_db']:+.4f} dB on the blurred scenes, worst {r['dslr']['worst_db']:+.4f} dB")
    if args.write:
        print(f"wrote {update_measured(lambda data: data.setdefault('bf16', {}).update(record))}")


def _network_of(method) -> str:
    """The shipped network weights a default runs (a composite's network part)."""
    from dpcli.methods.network import shipped_network_names

    names = set(shipped_network_names())
    return method.name if method.name in names else next(n for n in getattr(method, "parts", ()) if n in names)


def _mean(images):
    return np.mean(np.stack(images), 0)


def _report(summary: dict, kind: str, label: str, base: float, row: dict, cols: list[str], width: int,
            seconds: float) -> None:
    """Keep a scene's row for the means and print it."""
    for k, v in row.items():
        summary.setdefault(kind, {}).setdefault(k, []).append(v)
    print(f"{label:8s} {base:7.2f} " + " ".join(f"{row[c]:+{width}.3f}" for c in cols) + f"  {seconds:.1f}", flush=True)


def _canon(title: str, cols: list[str], width: int):
    """Print the table's title and header; yield (label, scene, input PSNR) of every Canon dev scene."""
    print(title)
    print(f"{'scene':8s} {'input':>7s} " + " ".join(f"{c:>{width}s}" for c in cols) + "  s/pass")
    for dev in dev_scenes(domains=("dslr",)):
        yield dev.name, dev.scene, dev.score(dev.combined)["psnr"]


def _report_mean(by: dict, cols: list[str], width: int, secs: list[float]) -> None:
    print(f"{'mean':8s} {'':7s} " + " ".join(f"{np.mean(by[c]):+{width}.3f}" for c in cols) + f"  {np.mean(secs):.1f}")


def tta(argv: list[str]) -> None:
    """Test-time augmentation (dpcli.methods.tta) of the networks on the 4 Canon dev scenes: gain and cost."""
    import torch

    from dpcli.methods import default_method, get_method, orient
    from dpcli.methods.tta import DP_TRANSFORMS, PAIR_SETS, SINGLE_SETS, PairTransform, dihedral, undo_dihedral
    from dpcli.metrics.protocols import score_canon

    ap = argparse.ArgumentParser(prog="bench_dev.py tta", description=TTA_DOC.splitlines()[0])
    ap.add_argument("--pair", default=None, help="pair weights (default: what run picks for colour pairs)")
    ap.add_argument("--single", default=None, help="single-image weights (default: what run picks for colour photos)")
    ap.add_argument("--skip", default="", help="pair | single: leave one out")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    args.pair = args.pair or default_method("dslr", True).name
    args.single = args.single or default_method("dslr", False).name
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    summary: dict[str, dict[str, list[float]]] = {}
    secs: dict[str, list[float]] = {}
    if args.skip != "pair":
        net = get_method(args.pair, device="cpu", tta=False)
        ident, swap = PairTransform(), PairTransform(swap=True)
        cols = ["files", "reversed", "detected", "tta2_files", "tta2_rev", "tta4_files", "tta4_rev", "tta2_det",
                "tta4_det", "tta8", "|files-rev|", "|tta8 f-r|"]
        title = f"DP {args.pair}: PSNR gain over the input (dB); |a-b|: max abs difference of the two orders' images"
        for label, sc, base in _canon(title, cols, 11):
            outs, t0 = {}, time.perf_counter()
            for t in DP_TRANSFORMS:
                outs[t] = t.undo(net.deblur(*t.apply(sc.view_a, sc.view_b), srgb=True).image)
            secs.setdefault("pair", []).append((time.perf_counter() - t0) / len(DP_TRANSFORMS))
            rev = {t: PairTransform(t.vflip, t.hflip, not t.swap) for t in DP_TRANSFORMS}  # t of (b, a) = rev[t] of (a, b)
            sets = {"tta2": PAIR_SETS[2], "tta4": PAIR_SETS[4]}
            img = {"files": outs[ident], "reversed": outs[swap], "tta8": _mean([outs[t] for t in DP_TRANSFORMS])}
            for k, ts in sets.items():
                img[f"{k}_files"] = _mean([outs[t] for t in ts])
                img[f"{k}_rev"] = _mean([outs[rev[t]] for t in ts])
            swapped = orient(sc.view_a, sc.view_b, srgb=True).swapped  # what run does
            img["detected"] = img["reversed" if swapped else "files"]
            for k in sets:
                img[f"{k}_det"] = img[f"{k}_rev" if swapped else f"{k}_files"]
            tta8_rev = _mean([outs[rev[t]] for t in DP_TRANSFORMS])  # the same sum, another order
            row = {k: score_canon(np.clip(v, 0, 1), sc)["psnr"] - base for k, v in img.items()}
            row["|files-rev|"] = float(np.abs(img["files"] - img["reversed"]).max())
            row["|tta8 f-r|"] = float(np.abs(img["tta8"] - tta8_rev).max())
            _report(summary, "pair", label, base, row, cols, 11, secs["pair"][-1])
        _report_mean(summary["pair"], cols, 11, secs["pair"])
    if args.skip != "single":
        net = get_method(args.single, device="cpu", tta=False)
        cols = ["tta1", "tta2", "tta4", "tta8"]
        sets = {f"tta{n}": ks for n, ks in SINGLE_SETS.items()}
        for label, sc, base in _canon(f"single {args.single}: PSNR gain over the input (dB)", cols, 8):
            outs, t0 = {}, time.perf_counter()
            for k in range(8):
                outs[k] = undo_dihedral(net.deblur(dihedral(sc.combined, k), None, srgb=True).image, k)
            secs.setdefault("single", []).append((time.perf_counter() - t0) / 8)
            row = {c: score_canon(np.clip(_mean([outs[k] for k in ks]), 0, 1), sc)["psnr"] - base
                   for c, ks in sets.items()}
            _report(summary, "single", label, base, row, cols, 8, secs["single"][-1])
        _report_mean(summary["single"], cols, 8, secs["single"])
    if args.write:
        def add(data: dict) -> None:
            tta = data.setdefault("tta", {})
            for kind, name, plain, cols_by_n in (("pair", args.pair, "detected", {2: "tta2_det", 4: "tta4_det", 8: "tta8"}),
                                                 ("single", args.single, "tta1", {2: "tta2", 4: "tta4", 8: "tta8"})):
                if kind in summary:
                    by = summary[kind]
                    passes = {}
                    for n, col in cols_by_n.items():
                        delta = np.asarray(by[col]) - np.asarray(by[plain])
                        passes[str(n)] = {"gain_db": round(float(delta.mean()), 3), "worst_db": round(float(delta.min()), 3)}
                    tta.setdefault(name, {})["dslr"] = {"passes": passes,
                                                       "seconds_per_pass": round(float(np.mean(secs[kind])), 1)}

        print(f"wrote {update_measured(add)}")


if __name__ == "__main__":
    subcommands({"methods": methods, "composite": composite, "tta": tta, "bf16": bf16})
