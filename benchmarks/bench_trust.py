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

    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_trust.py [trust] [--methods auto,classical,zeroshot]
        [--domains dslr,phone] [--quick] [--crops out/trust] [--json trust.json]

--quick: 2 scenes per domain (canon_00, canon_01 / 002, 006) instead of 4.

``unseen``: photos nobody tuned on (scikit-image's colour photos), how much `run` changes them:

    python benchmarks/bench_trust.py unseen [--methods auto,defocusgan_generator_small.dslr-synth] [--crops out/unseen]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, deblur_as_run, dev_data, dev_scenes, psnr_db, shown_srgb, subcommands, write_crop

TRUST_DOC = __doc__


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


def load_cases(shared: Path, domains: list[str], quick: bool) -> list[Case]:
    from dpcli.io.images import read_image

    cases: list[Case] = []
    if "dslr" in domains:
        for dev in dev_scenes(shared, ("dslr",), limit=2 if quick else None):
            sc = dev.scene
            cases.append(Case("dslr", dev.name, "blurred", dev.a, dev.b, True, sc.gt, dev.combined, sc.mask,
                              lambda img, score=dev.score: score(img)["psnr"]))
            cases.append(Case("dslr", dev.name, "sharp", sc.gt, sc.gt, True, sc.gt, None, sc.mask))
        scene_c = np.asarray(read_image(ROOT / "examples" / "single" / "scene_c.png").data, np.float32)
        gt_c = np.asarray(read_image(ROOT / "examples" / "ground_truth" / "scene_c.png").data, np.float32)
        cases.append(Case("dslr", "scene_c", "scene_c", scene_c, None, True, gt_c))
    if "phone" in domains:
        for dev in dev_scenes(shared, ("phone",), limit=2 if quick else None):  # file order; run detects L/R
            cases.append(Case("phone", dev.name, "blurred", dev.a, dev.b, False, dev.scene.gt, dev.combined, None,
                              lambda img, score=dev.score: score(img)["psnr"]))
            gt = np.clip(dev.scene.gt, 0, 1)
            cases.append(Case("phone", dev.name, "sharp", gt, gt, False, gt))
    return cases


def evaluate(name: str, cases: list[Case], crops: Path | None, cache: dict, done: dict,
             precision: str = "auto") -> list[dict]:
    """Rows (one per domain and kind of input the method takes) for method ``name`` (or auto), its
    networks in ``precision``."""
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
                    img, ran = deblur_as_run(name, left, right, srgb=case.srgb, domain=case.domain, cache=cache,
                                             precision=precision)
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
                shown_img, shown_gt = shown_srgb(img, case.srgb), shown_srgb(case.reference, case.srgb)
                shown_in = shown_srgb(case.baseline, case.srgb)
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
                row["sharp"].append(psnr_db(img, case.reference, case.mask))
                if crops is not None:
                    diff = torch.from_numpy(np.abs(img - case.reference).mean(0))
                    if case.mask is not None:
                        diff = diff * torch.from_numpy(case.mask).float()
                    write_crop(crops / f"{tag}.png", [case.reference, img], case.srgb, diff)
            else:  # scene_c
                row["scene_c"] = psnr_db(img, case.reference)
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


def trust(argv: list[str]) -> None:
    """One benchmark of trust: per method and for the default (`auto`), per domain, on the real dev data."""
    ap = argparse.ArgumentParser(prog="bench_trust.py [trust]", description=TRUST_DOC.splitlines()[0])
    ap.add_argument("--methods", default="all", help="comma list of method names and/or auto; "
                    "all = auto + every registered method (dpcli.methods.method_names)")
    ap.add_argument("--domains", default="dslr,phone")
    ap.add_argument("--quick", action="store_true", help="2 scenes per domain instead of 4")
    ap.add_argument("--crops", type=Path, default=None, help="folder for before/after crops (PNG)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="the networks' "
                    "arithmetic, as `run --precision` (bf16 runs natively on AVX-512 BF16 / AMX CPUs, emulated and "
                    "slow elsewhere)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from dpcli.methods import method_names

    names = ["auto", *method_names()] if args.methods == "all" else args.methods.split(",")
    cases = load_cases(dev_data(), args.domains.split(","), args.quick)
    scene_c = next((c for c in cases if c.kind == "scene_c"), None)
    cache: dict = {}
    done: dict = {}
    rows: list[dict] = []
    for name in names:
        t = time.perf_counter()
        new = evaluate(name, cases, args.crops, cache, done, args.precision)
        rows += new
        for r in new:
            print(f"{name} {r['domain']} {r['input']}: (gain dB, artefacts) {r['scenes']} sharp "
                  f"{[round(s, 1) for s in r['sharp']]} ({time.perf_counter() - t:.0f} s)", flush=True)
    print()
    print(table(rows, None if scene_c is None else psnr_db(scene_c.left, scene_c.reference)))
    if args.json:
        for r in rows:
            r["ran"] = sorted(r["ran"])
        args.json.write_text(json.dumps(rows, indent=1, default=float) + "\n")


UNSEEN_DOC = """Photos nobody tuned on: how much `dpdeblur run` changes scikit-image's bundled colour photos.

No ground truth exists for these photos and none is sharp everywhere (chelsea's background is out of
focus, astronaut's shuttle model stands behind the sitter), so this is not the harm figure of
``trust``: it shows how much each method changes a photo and where. Each photo runs at full
size and downscaled 2x (box filter: every soft detail becomes sharper, so a change that stays is
one the method makes on detail that is sharp at pixel scale). Columns: PSNR of the output against
the photo (dB), and the share of pixels changed by more than 2/255. Every photo goes through the
per-item path of `run` (:func:`dpcli.pipeline.process`). ``--crops DIR`` writes photo | output
crops where the change is densest (open them).

    python benchmarks/bench_trust.py unseen [--methods auto,defocusgan_generator_small.dslr-synth]
        [--crops out/unseen]

Needs scikit-image (the test extra).
"""

# the colour photos in the scikit-image wheel (skimage.data); motorcycle: the left view of its stereo pair
PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "motorcycle", "rocket")
CHANGED = 2 / 255  # a pixel counts as changed beyond this (max over channels)


def load_photo(name: str) -> np.ndarray:
    """(3, H, W) float32 sRGB in [0, 1], as the file holds it."""
    import skimage.data as data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return np.ascontiguousarray(np.asarray(img)[..., :3].transpose(2, 0, 1), np.float32) / 255.0


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscale by an integer factor (the photo cut to a multiple of it)."""
    if factor == 1:
        return img
    t = torch.from_numpy(img)[None]
    return torch.nn.functional.avg_pool2d(t, factor)[0].numpy()


def quantise(img: np.ndarray) -> np.ndarray:
    """As an 8-bit file would hold it: the input of `run` on a saved photo."""
    return np.round(img * 255.0).astype(np.float32) / 255.0


def unseen(argv: list[str]) -> None:
    """Photos nobody tuned on: how much `dpdeblur run` changes scikit-image's bundled colour photos."""
    ap = argparse.ArgumentParser(prog="bench_trust.py unseen", description=UNSEEN_DOC.splitlines()[0])
    ap.add_argument("--methods", default="auto", help="comma-separated method names (`dpdeblur models`)")
    ap.add_argument("--scales", default="1,2", help="downscale factors")
    ap.add_argument("--crops", type=Path, default=None, help="folder for photo | output crops (PNG)")
    args = ap.parse_args(argv)
    cache: dict = {}
    scales = [int(s) for s in args.scales.split(",")]
    for name in args.methods.split(","):
        print(f"\n{name}: PSNR against the photo (dB) / share of pixels changed by > 2/255")
        print(f"{'photo':18s} " + " ".join(f"{'1/' + str(s) + ' size':>16s}" for s in scales))
        by_scale: dict[int, list[float]] = {s: [] for s in scales}
        ran = name
        for photo in PHOTOS:
            cells = []
            for s in scales:
                img = quantise(downscale(load_photo(photo), s))
                out, ran = deblur_as_run(name, img, None, srgb=True, domain="dslr", cache=cache)
                out = quantise(np.clip(out, 0, 1))
                psnr = psnr_db(out, img)
                diff = np.abs(out - img).max(0)
                by_scale[s].append(psnr)
                cells.append(f"{psnr:7.2f} / {float((diff > CHANGED).mean()):6.3f}")
                if args.crops is not None:
                    args.crops.mkdir(parents=True, exist_ok=True)
                    write_crop(args.crops / f"{ran}_{photo}_1-{s}.png", [img, out], True,
                               torch.from_numpy(diff))
            print(f"{photo:18s} " + " ".join(f"{c:>16s}" for c in cells), flush=True)
        print(f"{'mean / min':18s} " + " ".join(f"{np.mean(v):7.2f} / {min(v):6.2f}" for v in by_scale.values())
              + f"   (ran: {ran})")


if __name__ == "__main__":
    subcommands({"trust": trust, "unseen": unseen}, default="trust")
