"""Test-time augmentation (dpcli.methods.tta) of the networks on the 4 Canon dev scenes: gain and cost.

DP (``--pair``, default the weights `run` picks for colour pairs): the network runs ONCE on each of the 8 transforms
(vertical flip x horizontal flip x L/R exchange) of the pair in its file order; since the
transforms of the reversed order (b, a) are the same 8 pairs, every variant of both file orders
is an average of these outputs: no TTA (files = identity, reversed = the exchange), TTA-2
(identity + vertical flip), TTA-4 (the 4 sign-keeping transforms), TTA-8 (all: the same image for
both orders), and `run`'s detected L/R order without and with TTA-4 (what ``--tta`` runs). Single
(``--single``, default the weights `run` picks for colour photos): the 8 dihedral transforms of the combined view; TTA-1, TTA-2 (0 + 180 deg), TTA-4 (rotations),
TTA-8. Prints per-scene PSNR gains over the input and seconds per pass; --write stores what TTA adds
(pairs: TTA-4 in the detected order; single: TTA-8) in dpcli/methods/measured.json ("tta" section), which decide the default (dpcli.methods.tta.tta_worth).

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_tta.py [--pair NAME] [--single NAME] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def _mean(images):
    return np.mean(np.stack(images), 0)


def _report(summary: dict, kind: str, label: str, base: float, row: dict, cols: list[str], width: int,
            seconds: float) -> None:
    """Keep a scene's row for the means and print it."""
    for k, v in row.items():
        summary.setdefault(kind, {}).setdefault(k, []).append(v)
    print(f"{label:8s} {base:7.2f} " + " ".join(f"{row[c]:+{width}.3f}" for c in cols) + f"  {seconds:.1f}", flush=True)


def _scenes(canon: Path, title: str, cols: list[str], width: int):
    """Print the table's title and header; yield (label, scene, input PSNR) of every Canon dev scene."""
    from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene, score_canon

    print(title)
    print(f"{'scene':8s} {'input':>7s} " + " ".join(f"{c:>{width}s}" for c in cols) + "  s/pass")
    for sid in list_canon_scenes(canon):
        sc = load_canon_scene(canon, sid)
        yield f"canon_{sid}", sc, score_canon(sc.combined, sc)["psnr"]


def _report_mean(by: dict, cols: list[str], width: int, secs: list[float]) -> None:
    print(f"{'mean':8s} {'':7s} " + " ".join(f"{np.mean(by[c]):+{width}.3f}" for c in cols) + f"  {np.mean(secs):.1f}")


def main() -> None:
    import torch

    from dpcli.methods import default_method, get_method, orient
    from dpcli.methods.tta import DP_TRANSFORMS, PAIR_SETS, SINGLE_SETS, PairTransform, dihedral, undo_dihedral
    from dpcli.metrics.protocols import score_canon

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", default=None, help="pair weights (default: what run picks for colour pairs)")
    ap.add_argument("--single", default=None, help="single-image weights (default: what run picks for colour photos)")
    ap.add_argument("--skip", default="", help="pair | single: leave one out")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    args.pair = args.pair or default_method("dslr", True).name
    args.single = args.single or default_method("dslr", False).name
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    canon = Path(os.environ.get("DPDEBLUR_SHARED", "../shared")) / "data" / "canon-dpdd-gif"
    summary: dict[str, dict[str, list[float]]] = {}
    secs: dict[str, list[float]] = {}
    if args.skip != "pair":
        net = get_method(args.pair, device="cpu", tta=False)
        ident, swap = PairTransform(), PairTransform(swap=True)
        cols = ["files", "reversed", "detected", "tta2_files", "tta2_rev", "tta4_files", "tta4_rev", "tta2_det",
                "tta4_det", "tta8", "|files-rev|", "|tta8 f-r|"]
        title = f"DP {args.pair}: PSNR gain over the input (dB); |a-b|: max abs difference of the two orders' images"
        for label, sc, base in _scenes(canon, title, cols, 11):
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
        for label, sc, base in _scenes(canon, f"single {args.single}: PSNR gain over the input (dB)", cols, 8):
            outs, t0 = {}, time.perf_counter()
            for k in range(8):
                outs[k] = undo_dihedral(net.deblur(dihedral(sc.combined, k), None, srgb=True).image, k)
            secs.setdefault("single", []).append((time.perf_counter() - t0) / 8)
            row = {c: score_canon(np.clip(_mean([outs[k] for k in ks]), 0, 1), sc)["psnr"] - base
                   for c, ks in sets.items()}
            _report(summary, "single", label, base, row, cols, 8, secs["single"][-1])
        _report_mean(summary["single"], cols, 8, secs["single"])
    if args.write:
        path = Path(__file__).resolve().parents[1] / "dpcli" / "methods" / "measured.json"
        data = json.loads(path.read_text())
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
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
