"""One benchmark of trust: per method and for the default (`auto`), per domain, on the real dev data.

Columns (each through the code path of `dpdeblur run`: :func:`deblur_as_run`):

- gain: mean PSNR gain over the input on the blurred dev scenes (dslr: the 4 Canon DPDD GIF scenes,
  label corner masked; phone: the 4 Pixel 4 scenes, preprocessed GT crop, published protocol),
  files in their given order, L/R order detected as in `run`; worst: the worst scene's change.
- sharp single / sharp pair: PSNR of the output against a sharp input (the dev GT images as single
  photos, and as in-focus DP pairs with left = right), mean and minimum (dB; identity = inf, the
  target is >= 40 mean, >= 37 each).
- scene_c: examples/single/scene_c (a nearly sharp single photo; input 39.76 dB) against its GT.
- artefacts: share of pixels near strong GT edges leaving the GT's local range by > 2/255
  (:func:`dpcli.metrics.artefact_share`, shown in sRGB), output vs the input's own share.
- s/MP: seconds per megapixel on the blurred scenes (this machine, --threads as set).

Before/after crops (input | output | GT) go to ``--crops`` (where the output's artefacts are
densest, and where a sharp input changed most); open them.

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_trust.py [--methods auto,classical,zeroshot]
        [--domains dslr,phone] [--quick] [--crops out/trust] [--json trust.json]

--quick: 2 scenes per domain (canon_00, canon_01 / 002, 006) instead of 4.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """One input for a method: a DP pair (right given) or a single image, with how to score it."""

    domain: str
    scene: str
    kind: str  # blurred | sharp | scene_c
    left: np.ndarray
    right: np.ndarray | None
    srgb: bool
    reference: np.ndarray  # what the output is compared with (GT; for sharp inputs the input itself)
    baseline: np.ndarray | None = None  # the input's image scored the same way (blurred scenes)
    mask: np.ndarray | None = None
    score: object = None  # callable(image) -> PSNR, the domain's protocol
    extra: dict = field(default_factory=dict)


def deblur_as_run(name: str, left: np.ndarray, right: np.ndarray | None, *, srgb: bool, domain: str,
                  cache: dict) -> tuple[np.ndarray, str]:
    """What `dpdeblur run` does with one item: the per-item pipeline itself (:func:`dpcli.pipeline.process`:
    ``auto`` -> the best measured method of the data's domain, pairs oriented, the method's post
    stages, the image clipped to [0, 1] as written). ``domain`` is what the case expects; the
    pipeline decides it from the data and a mismatch is an error here.

    Returns: (image (C, H, W) float32, the method name that ran).
    """
    from dpcli.pipeline import MethodChooser, Options, Source, Views, process

    key = ("pipeline", name)
    if key not in cache:  # one chooser per method name: each method is built once per benchmark
        options = Options(method=name, runtime={"device": "cpu"})
        cache[key] = options, MethodChooser.of(options)
    options, chooser = cache[key]
    done = process(Views.from_arrays(left, right), Source(srgb=srgb), options, chooser)
    if done.domain != domain:
        raise LookupError(f"the pipeline calls this {done.domain} data, the case says {domain}")
    return np.asarray(done.image, np.float32), done.method.name


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    err = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    mse = float(err[..., mask].mean() if mask is not None else err.mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


def _shown(x: np.ndarray, srgb: bool) -> torch.Tensor:
    from dpcli.optics import linear_to_srgb

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    return t if srgb else linear_to_srgb(t.clamp(0, 1))


def load_cases(shared: Path, domains: list[str], quick: bool) -> list[Case]:
    from dpcli.io.images import read_image
    from dpcli.metrics.protocols import (list_canon_scenes, load_canon_scene, load_pixel4_scene, score_canon,
                                         score_pixel4)

    cases: list[Case] = []
    if "dslr" in domains:
        canon = shared / "data" / "canon-dpdd-gif"
        for sid in list_canon_scenes(canon)[: 2 if quick else None]:
            sc = load_canon_scene(canon, sid)
            name = f"canon_{sid}"
            cases.append(Case("dslr", name, "blurred", sc.view_a, sc.view_b, True, sc.gt, sc.combined, sc.mask,
                              lambda img, sc=sc: score_canon(img, sc)["psnr"]))
            cases.append(Case("dslr", name, "sharp", sc.gt, sc.gt, True, sc.gt, None, sc.mask))
        scene_c = np.asarray(read_image(ROOT / "examples" / "single" / "scene_c.png").data, np.float32)
        gt_c = np.asarray(read_image(ROOT / "examples" / "ground_truth" / "scene_c.png").data, np.float32)
        cases.append(Case("dslr", "scene_c", "scene_c", scene_c, None, True, gt_c))
    if "phone" in domains:
        pixel = shared / "data" / "pixel4"
        for sid in ["002", "006", "009", "013"][: 2 if quick else None]:
            sc = load_pixel4_scene(pixel, sid, swap_lr=False)  # file order; run detects the L/R order
            left, right = np.clip(sc.crop_view(sc.left), 0, 1), np.clip(sc.crop_view(sc.right), 0, 1)
            cases.append(Case("phone", sid, "blurred", left, right, False, sc.gt, sc.crop_view(sc.combined), None,
                              lambda img, sc=sc: score_pixel4(img, sc)["psnr"]))
            gt = np.clip(sc.gt, 0, 1)
            cases.append(Case("phone", sid, "sharp", gt, gt, False, gt))
    return cases


def _crop_at(density: torch.Tensor, size: int) -> tuple[int, int]:
    """Top-left corner of the size x size window with the largest mean of a (H, W) map."""
    from dpcli.optics.windows import box_mean

    h, w = density.shape
    s = min(size, h, w)
    m = box_mean(density[None, None].double(), s // 2)[0, 0]
    y, x = divmod(int(m.argmax()), w)
    return min(max(y - s // 2, 0), h - s), min(max(x - s // 2, 0), w - s)


def write_crop(path: Path, panels: list[np.ndarray], srgb: bool, where: torch.Tensor, size: int = 160) -> None:
    """Side by side crops (input | output | reference) at the densest part of ``where``, 2x."""
    from PIL import Image

    y, x = _crop_at(where, size)
    tiles = []
    for p in panels:
        t = _shown(p, srgb).numpy()[:, y:y + size, x:x + size]
        t = np.repeat(t, 3, 0) if t.shape[0] == 1 else t
        tiles.append(t.transpose(1, 2, 0))
        tiles.append(np.ones((tiles[-1].shape[0], 4, 3), np.float32))
    img = Image.fromarray((np.clip(np.concatenate(tiles[:-1], 1), 0, 1) * 255).round().astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.resize((img.width * 2, img.height * 2), Image.NEAREST).save(path)


def evaluate(name: str, cases: list[Case], crops: Path | None, cache: dict, done: dict) -> list[dict]:
    """Rows (one per domain and kind of input the method takes) for method ``name`` (or auto)."""
    from dpcli.methods import get_method
    from dpcli.metrics.artefacts import artefact_map, artefact_share

    rows: dict[tuple[str, bool], dict] = {}
    for case in cases:
        for pair in (True, False):
            if case.kind == "scene_c" and pair:
                continue
            if name != "auto":
                method = cache.setdefault(name, get_method(name, device="cpu"))
                if method.needs_pair != pair or case.domain not in method.domains:
                    continue
            # single-image methods: the combined capture of a blurred scene, the GT of a sharp one
            left = case.baseline if case.kind == "blurred" and not pair else case.left
            right = case.right if pair else None
            try:
                key = (name, case.domain, case.scene, case.kind, pair)
                if key in done:
                    img, ran, sec = done[key]
                else:
                    t = time.perf_counter()
                    img, ran = deblur_as_run(name, left, right, srgb=case.srgb, domain=case.domain, cache=cache)
                    sec = time.perf_counter() - t
                    done[key] = done[(ran, case.domain, case.scene, case.kind, pair)] = (img, ran, sec)
            except LookupError:
                continue
            row = rows.setdefault((case.domain, pair), {"method": name, "ran": set(), "domain": case.domain,
                                                        "input": "pair" if pair else "single", "gain": [],
                                                        "sharp": [], "scene_c": None, "art": [], "art_in": [],
                                                        "sec": 0.0, "mpx": 0.0, "scenes": {}})
            row["ran"].add(ran)
            tag = f"{case.domain}_{case.scene}_{case.kind}_{'pair' if pair else 'single'}_{name}"
            if case.kind == "blurred":
                base, got = case.score(case.baseline), case.score(img)
                row["gain"].append(got - base)
                shown_img, shown_gt = _shown(img, case.srgb), _shown(case.reference, case.srgb)
                shown_in = _shown(case.baseline, case.srgb)
                row["art"].append(float(artefact_share(shown_img, shown_gt, case.mask)))
                row["art_in"].append(float(artefact_share(shown_in, shown_gt, case.mask)))
                row["scenes"][case.scene] = (round(got - base, 2), round(row["art"][-1], 4))
                row["sec"] += sec
                row["mpx"] += img.shape[-1] * img.shape[-2] / 1e6
                if crops is not None:
                    art = artefact_map(shown_img, shown_gt)[0][0, 0].float()
                    if case.mask is not None:  # not the burnt-in label corner
                        art = art * torch.from_numpy(case.mask).float()
                    write_crop(crops / f"{tag}.png", [case.baseline, img, case.reference], case.srgb, art)
            elif case.kind == "sharp":
                row["sharp"].append(_psnr(img, case.reference, case.mask))
                if crops is not None:
                    diff = torch.from_numpy(np.abs(img - case.reference).mean(0))
                    if case.mask is not None:
                        diff = diff * torch.from_numpy(case.mask).float()
                    write_crop(crops / f"{tag}.png", [case.reference, img], case.srgb, diff)
            else:  # scene_c
                row["scene_c"] = _psnr(img, case.reference)
                if crops is not None:
                    diff = torch.from_numpy(np.abs(img - case.left).mean(0))
                    write_crop(crops / f"{tag}.png", [case.left, img, case.reference], case.srgb, diff)
    return list(rows.values())


def _fmt(values: list[float], agg) -> str:
    return "-" if not values else f"{agg(values):.2f}"


def table(rows: list[dict], scene_c_input: float | None) -> str:
    head = ("| method (ran) | domain | input | gain (dB) | worst scene | sharp: mean / min (dB) | scene_c (dB) "
            "| artefacts: out / input | s/MP |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        ran = ", ".join(sorted(r["ran"]))
        who = r["method"] if r["method"] == ran else f"{r['method']} ({ran})"
        sharp = "-" if not r["sharp"] else f"{np.mean(r['sharp']):.1f} / {np.min(r['sharp']):.1f}"
        sc = "-" if r["scene_c"] is None else f"{r['scene_c']:.2f}"
        art = "-" if not r["art"] else f"{np.mean(r['art']):.4f} / {np.mean(r['art_in']):.4f}"
        spm = "-" if not r["mpx"] else f"{r['sec'] / r['mpx']:.1f}"
        gain = "-" if not r["gain"] else f"{np.mean(r['gain']):+.2f}"
        worst = "-" if not r["gain"] else f"{np.min(r['gain']):+.2f}"
        lines.append(f"| {who} | {r['domain']} | {r['input']} | {gain} | {worst} | {sharp} | {sc} | {art} | {spm} |")
    if scene_c_input is not None:
        lines.append(f"\nscene_c input vs its GT: {scene_c_input:.2f} dB")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="all", help="comma list of method names and/or auto; "
                    "all = auto + every registered method (dpcli.methods.method_names)")
    ap.add_argument("--domains", default="dslr,phone")
    ap.add_argument("--quick", action="store_true", help="2 scenes per domain instead of 4")
    ap.add_argument("--crops", type=Path, default=None, help="folder for before/after crops (PNG)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from dpcli.methods import method_names

    names = ["auto", *method_names()] if args.methods == "all" else args.methods.split(",")
    shared = Path(os.environ.get("DPDEBLUR_SHARED", "../shared"))
    cases = load_cases(shared, args.domains.split(","), args.quick)
    scene_c = next((c for c in cases if c.kind == "scene_c"), None)
    cache: dict = {}
    done: dict = {}
    rows: list[dict] = []
    for name in names:
        t = time.perf_counter()
        new = evaluate(name, cases, args.crops, cache, done)
        rows += new
        for r in new:
            print(f"{name} {r['domain']} {r['input']}: (gain dB, artefacts) {r['scenes']} sharp "
                  f"{[round(s, 1) for s in r['sharp']]} ({time.perf_counter() - t:.0f} s)", flush=True)
    print()
    print(table(rows, None if scene_c is None else _psnr(scene_c.left, scene_c.reference)))
    if args.json:
        for r in rows:
            r["ran"] = sorted(r["ran"])
        args.json.write_text(json.dumps(rows, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
