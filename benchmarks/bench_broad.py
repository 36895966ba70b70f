"""The broad benchmark: photos nobody trains or tunes on, degraded by known defocus blur, through the
per-item path of `dpdeblur run` (:func:`bench_trust.deblur_as_run`), one table per method.

Photos (about 200, 256x256 crops, from three kinds of source that share nothing with the training
photos of :mod:`dpcli.synth`, which are scikit-image's ``PHOTOS``, the motorcycle and the Debian
lomiri / mate wallpapers):

- ``plasma``: the 12 photographs among KDE Plasma's wallpapers (Debian ``plasma-workspace-wallpapers``:
  ``apt-get install plasma-workspace-wallpapers``), reduced in linear light to about 1280 px wide,
  up to 12 crops each on a fixed grid;
- ``pypi``: photos that Python packages ship: scikit-learn's ``china`` and ``flower``, matplotlib's
  ``grace_hopper``, scikit-image's ``coins`` and ``moon`` (grey; not among the training photos)
  (``pip install scikit-learn matplotlib``);
- ``leaves``: 60 dead-leaves images rendered by :func:`dpcli.synth.deadleaves.dead_leaves`.

Each photo's half (``tune`` or ``report``) is fixed by the SHA-256 of its source file (of
``leaves-SEED`` for rendered ones): every crop of one photo lies in the same half. Choose on
``--half tune``; report ``--half report``.

Conditions (:data:`CONDITIONS`): the photo as it is (``sharp``: PSNR against itself and the share
of pixels changed by > 2/255); uniform discs of radius 1, 2, 3, 5, 8 px; a hexagonal aperture and a
Gaussian; a radius ramp 0 -> 5 px (spatially varying); disc 3 with Poisson-Gaussian noise and as a
JPEG of quality 85; the sharp photo with noise alone (``noise``: the share of flat-region pixels
changed by at most 2/255, target >= 95 %); DP pairs with hard half-disc kernels, a gather renderer
(:mod:`dpcli.synth.degrade`, not training's), as colour sRGB (dslr) and as linear grey raw (phone).
All blur is applied in linear light; single images are saved as 8-bit sRGB (the JPEG condition
through a real encoder), pairs as 8-bit sRGB (dslr) or 16-bit linear (phone).

    python benchmarks/bench_broad.py --half report [--methods auto,classical_single]
        [--conditions sharp,disc1,disc2] [--limit 4] [--crops out/broad] [--json broad.json]
    DPDEBLUR_SHARED=../shared python benchmarks/bench_broad.py --half tune --limit 10 --conditions pair2,pair-3 \
        --dp-consistency      # a study: outputs made consistent with the pair's measured blur (docs/broad.md)
    python benchmarks/bench_broad.py --half tune --conditions pair2,pair-3,pair-2..4 \
        --blur-check          # a study: what the blur check measures on outputs made without it (docs/broad.md)
    python benchmarks/bench_broad.py --half tune --methods deconv_or_network \
        --conditions sharp,disc1,disc2,disc3,disc5 \
        --focus-part          # a study: the share the in-focus check reads, what each setting leaves (docs/broad.md)
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PLASMA = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
          "OneStandsOut", "Path", "Volna", "summer_1am")
LEAVES = 60
CROP = 256
PER_PHOTO = 12
CHANGED = 2 / 255

# name -> (kind, parameters); kind: sharp | blur | noise | pair
CONDITIONS: dict[str, tuple[str, dict]] = {
    "sharp": ("sharp", {}),
    "disc1": ("blur", {"psf": "disc", "radius": 1.0}),
    "disc2": ("blur", {"psf": "disc", "radius": 2.0}),
    "disc3": ("blur", {"psf": "disc", "radius": 3.0}),
    "disc5": ("blur", {"psf": "disc", "radius": 5.0}),
    "disc8": ("blur", {"psf": "disc", "radius": 8.0}),
    "hexagon3": ("blur", {"psf": "polygon", "radius": 3.0}),
    "gauss3": ("blur", {"psf": "gaussian", "radius": 3.0}),
    "ramp0-5": ("blur", {"psf": "disc", "ramp": (0.0, 5.0)}),
    "disc3+noise": ("blur", {"psf": "disc", "radius": 3.0, "noise": True}),
    "disc3+jpeg": ("blur", {"psf": "disc", "radius": 3.0, "jpeg": 85}),
    "noise": ("noise", {}),
    "pair2": ("pair", {"ramp": (2.0, 2.0), "domain": "dslr"}),
    "pair-3": ("pair", {"ramp": (-3.0, -3.0), "domain": "dslr"}),
    "pair-2..4": ("pair", {"ramp": (-2.0, 4.0), "domain": "dslr"}),
    "phone-pair2": ("pair", {"ramp": (2.0, 2.0), "domain": "phone"}),
    "phone-pair-2..4": ("pair", {"ramp": (-2.0, 4.0), "domain": "phone"}),
}
NOISE = {"photons": 300.0, "read": 0.004}  # a phone at a high ISO (linear units)


@dataclass
class Photo:
    name: str
    source: str
    half: str
    image: np.ndarray  # (3, CROP, CROP) float32 linear light


def half_of(key: bytes) -> str:
    return "tune" if hashlib.sha256(key).digest()[0] % 2 == 0 else "report"


def _srgb_file(path: str) -> np.ndarray:
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    return img.transpose(2, 0, 1)


def _linear(srgb: np.ndarray) -> np.ndarray:
    from dpcli.optics import srgb_to_linear

    return srgb_to_linear(torch.from_numpy(np.ascontiguousarray(srgb, np.float32))).numpy()


def _crops(name: str, source: str, half: str, linear: np.ndarray, width: int) -> list[Photo]:
    """Reduce (box filter, linear light) to about ``width`` px wide, then up to PER_PHOTO crops on a grid."""
    factor = max(1, round(linear.shape[-1] / width))
    if factor > 1:
        linear = torch.nn.functional.avg_pool2d(torch.from_numpy(linear)[None], factor)[0].numpy()
    rows, cols = linear.shape[1] // CROP, linear.shape[2] // CROP
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    step = max(1, len(cells) / PER_PHOTO)
    chosen = [cells[int(i * step)] for i in range(min(PER_PHOTO, len(cells)))]
    return [Photo(f"{name}@{r}{c}", source, half,
                  np.ascontiguousarray(linear[:, r * CROP:(r + 1) * CROP, c * CROP:(c + 1) * CROP]))
            for r, c in chosen]


def _plasma() -> list[Photo]:
    photos = []
    for name in PLASMA:
        files = sorted(glob.glob(f"/usr/share/wallpapers/{name}/contents/images/*.jpg"),
                       key=lambda f: os.path.getsize(f))
        if not files:
            raise SystemExit("the plasma photos are missing: apt-get install plasma-workspace-wallpapers")
        data = Path(files[-1]).read_bytes()
        photos += _crops(name, "plasma", half_of(data), _linear(_srgb_file(files[-1])), 1280)
    return photos


def _pypi() -> list[Photo]:
    try:
        import matplotlib
        import skimage.data
        import sklearn.datasets
    except ImportError:
        raise SystemExit("the pypi photos need: pip install scikit-learn matplotlib scikit-image") from None
    sk = Path(sklearn.datasets.__file__).parent / "images"
    files = {"china": sk / "china.jpg", "flower": sk / "flower.jpg",
             "grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"}
    photos = []
    for name, f in files.items():
        photos += _crops(name, "pypi", half_of(f.read_bytes()), _linear(_srgb_file(str(f))), 640)
    for name in ("coins", "moon"):
        grey = np.asarray(getattr(skimage.data, name)(), np.float32) / 255.0
        photos += _crops(name, "pypi", half_of(grey.tobytes()), _linear(np.repeat(grey[None], 3, 0)), 640)
    return photos


def _leaves() -> list[Photo]:
    from dpcli.synth.deadleaves import dead_leaves

    return [Photo(f"leaves{s:02d}", "leaves", half_of(f"leaves-{s}".encode()), dead_leaves(CROP, seed=s))
            for s in range(LEAVES)]


def load_photos(sources: list[str], half: str, limit: int | None) -> list[Photo]:
    loaders = {"plasma": _plasma, "pypi": _pypi, "leaves": _leaves}
    photos = []
    for s in sources:
        got = [p for p in loaders[s]() if half == "all" or p.half == half]
        photos += got[:limit] if limit else got
    return photos


# --- inputs ----------------------------------------------------------------------------------------

@dataclass
class Item:
    left: np.ndarray  # what run gets: a single image or the left view
    right: np.ndarray | None
    srgb: bool
    domain: str
    reference: np.ndarray  # the sharp photo, encoded as the input is
    baseline: np.ndarray  # the input's own image (a pair's combined view)


def _to_srgb8(linear: torch.Tensor) -> np.ndarray:
    from dpcli.optics import linear_to_srgb

    return (torch.round(linear_to_srgb(linear.clamp(0, 1)) * 255) / 255).numpy().astype(np.float32)


def make_item(photo: Photo, condition: str, seed: int) -> Item:
    from dpcli.synth import degrade

    kind, p = CONDITIONS[condition]
    x = torch.from_numpy(photo.image)[None]
    sharp = _to_srgb8(x)[0]
    if kind == "sharp":
        return Item(sharp, None, True, "dslr", sharp, sharp)
    if kind == "noise":
        noisy = _to_srgb8(degrade.poisson_gaussian(x, NOISE["photons"], NOISE["read"], seed))[0]
        return Item(noisy, None, True, "dslr", sharp, noisy)
    if kind == "blur":
        if "ramp" in p:
            y = degrade.varying_blur(x, degrade.radius_ramp(CROP, CROP, *p["ramp"]), p["psf"])
        else:
            y = degrade.uniform_blur(x, p["psf"], p["radius"])
        if p.get("noise"):
            y = degrade.poisson_gaussian(y, NOISE["photons"], NOISE["read"], seed)
        img = _to_srgb8(y)[0]
        if p.get("jpeg"):
            img = degrade.jpeg_roundtrip(img, p["jpeg"])
        return Item(img, None, True, "dslr", sharp, img)
    left, right = degrade.dp_pair(x, degrade.radius_ramp(CROP, CROP, *p["ramp"], direction="horizontal"))
    if p["domain"] == "dslr":
        return Item(_to_srgb8(left)[0], _to_srgb8(right)[0], True, "dslr", sharp, _to_srgb8((left + right) / 2)[0])
    grey = lambda t: (torch.round(t[:, 1:2].clamp(0, 1) * 65535) / 65535).numpy()[0]  # noqa: E731  green plane
    return Item(grey(left), grey(right), False, "phone", grey(x), grey((left + right) / 2))


# --- scoring ---------------------------------------------------------------------------------------

def flat_unchanged(out: np.ndarray, item: Item) -> float:
    """Share of the flat pixels (the sharp photo's 7x7 std below 1/255) that the method changed by
    at most 2/255 (max over channels) from its noisy input."""
    from dpcli.optics.windows import box_mean

    ref = torch.from_numpy(item.reference).mean(0)[None, None].double()
    std = (box_mean(ref**2, 3) - box_mean(ref, 3) ** 2).clamp(min=0).sqrt()[0, 0].numpy()
    flat = std < 1 / 255
    if not flat.any():
        return math.nan
    return float((np.abs(out - item.left).max(0)[flat] <= CHANGED + 1e-6).mean())


def score(out: np.ndarray, item: Item, kind: str) -> dict:
    from _common import psnr_db

    row = {"psnr": psnr_db(out, item.reference), "input": psnr_db(item.baseline, item.reference)}
    if kind == "sharp":
        row["changed"] = float((np.abs(out - item.left).max(0) > CHANGED + 1e-6).mean())
    if kind == "noise":
        row["flat_unchanged"] = flat_unchanged(out, item)
    return row


def run_method(name: str, photos: list[Photo], conditions: list[str], cache: dict, crops: Path | None,
               precision: str = "auto") -> dict[str, dict[str, dict]]:
    from _common import deblur_as_run, write_crop

    results: dict[str, dict[str, dict]] = {}
    for ci, cond in enumerate(conditions):
        kind = CONDITIONS[cond][0]
        per: dict[str, dict] = {}
        for pi, photo in enumerate(photos):
            item = make_item(photo, cond, seed=1000 * ci + pi)
            t = time.perf_counter()
            try:
                out, ran = deblur_as_run(name, item.left, item.right, srgb=item.srgb, domain=item.domain, cache=cache,
                                         precision=precision)
            except Exception as exc:  # a method that does not take this input (a pair method on a photo)
                per = {"skipped": str(exc).splitlines()[0]}
                break
            out = np.clip(out, 0, 1)
            row = score(out, item, kind)
            row.update(ran=ran, sec=time.perf_counter() - t)
            per[photo.name] = row
            if crops is not None and kind in ("blur", "sharp"):
                diff = torch.from_numpy(np.abs(out - item.reference).mean(0))
                write_crop(crops / name / cond / f"{photo.name}.png", [item.baseline, out, item.reference],
                           item.srgb, diff, size=128)
        results[cond] = per
        print(f"  {name} {cond}: {summary_cells(per, kind)}", flush=True)
    return results


def summary_cells(per: dict, kind: str) -> str:
    if "skipped" in per:
        return f"skipped ({per['skipped'][:60]})"
    rows = list(per.items())
    if not rows:
        return "-"
    if kind == "sharp":
        ps = [r["psnr"] for _, r in rows]
        worst = min(rows, key=lambda kv: kv[1]["psnr"])
        return (f"against itself mean {np.mean(np.minimum(ps, 99)):.1f} dB, min {worst[1]['psnr']:.1f} "
                f"({worst[0]}), changed {np.mean([r['changed'] for _, r in rows]):.3f}")
    if kind == "noise":
        flat = [r["flat_unchanged"] for _, r in rows if not math.isnan(r["flat_unchanged"])]
        worst = min(((k, r) for k, r in rows if not math.isnan(r["flat_unchanged"])),
                    key=lambda kv: kv[1]["flat_unchanged"], default=("-", {"flat_unchanged": math.nan}))
        return (f"flat pixels unchanged mean {np.mean(flat):.3f}, min {worst[1]['flat_unchanged']:.3f} "
                f"({worst[0]}); gain {np.mean([r['psnr'] - r['input'] for _, r in rows]):+.2f}")
    gains = {k: r["psnr"] - r["input"] for k, r in rows}
    worst = min(gains, key=gains.get)
    below = sum(g < 0 for g in gains.values())
    return (f"gain {np.mean(list(gains.values())):+.2f} dB (input {np.mean([r['input'] for _, r in rows]):.2f}), "
            f"worst {gains[worst]:+.2f} ({worst}), below input {below}/{len(gains)}")


DISCS = ("disc1", "disc2", "disc3", "disc5")  # the uniform discs a default must help (issue 38)


def broad_figures(res: dict[str, dict], photos: int) -> dict[str, dict]:
    """domain -> the figures :func:`dpcli.methods.builtin.broad_trust` reads: mean gain on the
    uniform discs of radius 1-5 px, how many blurred photos or rendered pairs came back below their
    input, and the sharp photos' PSNR against themselves (mean, min)."""
    out: dict[str, dict] = {}
    for cond, per in res.items():
        kind, p = CONDITIONS[cond]
        if "skipped" in per or not per or kind == "noise":
            continue
        domain = p.get("domain", "dslr")
        fig = out.setdefault(domain, {"photos": photos, "below_input": 0, "conditions": []})
        fig["conditions"].append(cond)
        if kind == "sharp":
            ps = [min(r["psnr"], 99.0) for r in per.values()]
            fig["sharp_mean_db"], fig["sharp_min_db"] = round(float(np.mean(ps)), 2), round(float(np.min(ps)), 2)
            continue
        gains = [r["psnr"] - r["input"] for r in per.values()]
        if cond in DISCS or kind == "pair":
            fig["below_input"] += sum(g < 0 for g in gains)
        if cond in DISCS:
            fig.setdefault("_disc", []).extend(gains)
    for fig in out.values():
        if "_disc" in fig:
            fig["disc_gain_db"] = round(float(np.mean(fig.pop("_disc"))), 3)
    return out


def write_measured(everything: dict, photos: int) -> None:
    from _common import update_measured

    def add(data: dict) -> None:
        broad = data.setdefault("broad", {})
        for name, res in everything.items():
            ran = {r.get("ran") for per in res.values() for r in per.values() if isinstance(r, dict)} - {None}
            if name == "auto" or len(ran) != 1:
                continue  # figures belong to one method, not to whichever auto chose
            for domain, fig in broad_figures(res, photos).items():
                broad.setdefault(name, {})[domain] = fig

    print(f"wrote the tuning-half figures of {', '.join(everything)} to {update_measured(add)}")


# --- a study: the DP pair's measured blur as a data-consistency check (docs/broad.md) ---------------
CONSISTENCY_MUS = (0.01, 0.03, 0.1)
DC_LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0)


def consistent(out: np.ndarray, combined: np.ndarray, radius: np.ndarray, mu: float) -> np.ndarray:
    """argmin_x ||k_r * x - y||^2 + mu ||x - out||^2 in linear light (y: the pair's combined view, k_r:
    a disc of the pair's measured |radius| per pixel): solved on :data:`DC_LEVELS` by FFT and blended
    between the two levels around each pixel's radius. (3, H, W) sRGB out, combined; (H, W) radius."""
    from dpcli.classical.consistency import level_index
    from dpcli.optics import disk_kernel, linear_to_srgb, srgb_to_linear
    from dpcli.optics.fourier import kernel_otf, taper_pad, wiener_joint

    lin = lambda a: srgb_to_linear(torch.from_numpy(np.ascontiguousarray(a)).float().clamp(0, 1))  # noqa: E731
    r = torch.as_tensor(np.abs(radius)).float().clamp(0, DC_LEVELS[-1])
    margin = 4 * int(DC_LEVELS[-1]) + 2
    po, py = taper_pad(lin(out), margin), taper_pad(lin(combined), margin)
    shape = tuple(po.data.shape[-2:])
    fo, fy = torch.fft.rfft2(po.data), torch.fft.rfft2(py.data)
    pos, frac = level_index(r, DC_LEVELS)  # r lies in [levels[pos - 1], levels[pos]]
    acc = torch.zeros_like(po.crop(po.data))
    for j, rj in enumerate(DC_LEVELS):
        w = torch.where(pos == j, frac, 0.0) + torch.where(pos == j + 1, 1 - frac, 0.0)
        if float(w.max()) == 0.0:
            continue
        k = disk_kernel(torch.tensor([rj]))[0] if rj > 0 else torch.ones(1, 1)
        otf = kernel_otf(k, shape)
        acc += w * po.crop(torch.fft.irfft2(wiener_joint(fy, fy, otf, otf, 2 * mu, torch.ones(()), fo), s=shape))
    return linear_to_srgb(acc.clamp(0, 1)).numpy()


def dp_consistency(method: str, photos: list[Photo], conditions: list[str]) -> None:
    """Gain of ``method`` on rendered colour pairs and on the Canon dev scenes, and of its output made
    consistent with the blur the pair's disparity measures (:func:`consistent`, the classical map)."""
    from _common import deblur_as_run, dev_data, dev_scenes, psnr_db

    from dpcli.classical import estimate_defocus_classical

    cache: dict = {}
    head = "gain of the method, then made consistent at mu " + " / ".join(map(str, CONSISTENCY_MUS))
    for cond in (c for c in conditions if CONDITIONS[c][0] == "pair" and CONDITIONS[c][1]["domain"] == "dslr"):
        gains = []
        print(f"{cond}: {head}; median |r| measured")
        for pi, photo in enumerate(photos):
            item = make_item(photo, cond, seed=pi)
            out = np.clip(deblur_as_run(method, item.left, item.right, srgb=True, domain="dslr", cache=cache)[0], 0, 1)
            radius = np.asarray(estimate_defocus_classical(item.left, item.right, srgb=True)[0])
            base = psnr_db(item.baseline, item.reference)
            row = [psnr_db(out, item.reference) - base] + [
                psnr_db(consistent(out, item.baseline, radius, mu), item.reference) - base for mu in CONSISTENCY_MUS]
            gains.append(row)
            print(f"  {photo.name:20s} " + " ".join(f"{g:+6.2f}" for g in row) + f"   {np.median(np.abs(radius)):.1f}")
        g = np.array(gains)
        print(f"  mean {' '.join(f'{v:+6.2f}' for v in g.mean(0))}; below input {(g < 0).sum(0).tolist()}")
    if not (dev_data() / "data" / "canon-dpdd-gif").is_dir():
        return
    print(f"Canon dev scenes: {head}")
    for sc in dev_scenes(domains=("dslr",)):
        out = np.clip(deblur_as_run(method, sc.a, sc.b, srgb=True, domain="dslr", cache=cache)[0], 0, 1)
        radius = np.asarray(estimate_defocus_classical(sc.a, sc.b, srgb=True)[0])
        base = sc.score(sc.combined)["psnr"]
        row = [sc.score(out)["psnr"] - base] + [sc.score(consistent(out, sc.combined, radius, mu))["psnr"] - base
                                                for mu in CONSISTENCY_MUS]
        print(f"  {sc.name:20s} " + " ".join(f"{g:+6.2f}" for g in row))


def blur_check_study(method: str, photos: list[Photo], conditions: list[str]) -> None:
    """Each colour pair through ``method`` with the blur check switched off, what the check measures
    on that output (:func:`dpcli.classical.consistency.check_pair`: the scale s, the share a) and the
    gain of what it would keep: the figures its settings were chosen from (docs/broad.md, "The blur
    check"). Offline, on the final output (the check itself runs inside each test-time pass), and on
    every pair, also those the blind deconvolution took (the check is a post step of the network)."""
    from unittest import mock

    from _common import deblur_as_run, psnr_db

    from dpcli.classical.consistency import ConsistencyConfig, check_pair
    from dpcli.methods.post import BlurCheck

    cfg, cache = ConsistencyConfig(), {}
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    rules = {"no check": lambda c: False, f"s >= {cfg.limit}": lambda c: c.scale >= cfg.limit,
             f"s >= {cfg.limit} or a < {cfg.least_share}": lambda c: c.inconsistent(cfg)}
    below = {rule: 0 for rule in rules}
    with mock.patch.object(BlurCheck, "__call__", lambda self, out, x: out):  # the raw output
        for ci, cond in enumerate(conditions):
            if CONDITIONS[cond][0] != "pair" or CONDITIONS[cond][1]["domain"] != "dslr":
                continue
            print(f"{cond}: gain unchecked, s, a, gain of the share a kept", flush=True)
            for pi, photo in enumerate(photos):
                item = make_item(photo, cond, seed=1000 * ci + pi)  # the seeds run_method uses
                out = deblur_as_run(method, item.left, item.right, srgb=True, domain="dslr", cache=cache)[0]
                out = np.clip(out, 0, 1)
                check = check_pair(tensor(out), tensor(item.left), tensor(item.right), srgb=True, config=cfg)
                base = psnr_db(item.baseline, item.reference)
                raw = psnr_db(out, item.reference) - base
                shrunk = np.clip(item.baseline + check.share * (out - item.baseline), 0, 1)
                kept = psnr_db(shrunk, item.reference) - base
                for rule, acts in rules.items():
                    below[rule] += (kept if acts(check) else raw) < 0
                print(f"  {photo.name:20s} {raw:+6.2f}  s {check.scale:4.2f}  a {check.share:4.2f}  {kept:+6.2f}",
                      flush=True)
    print("pairs below their input: " + "; ".join(f"{rule}: {n}" for rule, n in below.items()))


def focus_part_study(method: str, photos: list[Photo], conditions: list[str]) -> None:
    """Each single photo through ``method`` with the in-focus check switched off, the share of it
    that the check reads in focus (:class:`dpcli.methods.post.FocusPart`), and what each least share
    would leave: the figures its setting was chosen from (docs/broad.md, "The in-focus check"). A photo
    the blind deconvolution takes (``deconv_single`` changes it) keeps the method's output at any
    setting; any other keeps it only at a share of at least the least share, else comes back as it is."""
    from unittest import mock

    from _common import deblur_as_run, psnr_db

    from dpcli.methods import get_method
    from dpcli.methods.post import FocusPart, PostInput

    m = get_method(method)
    parts = [m] + [m.part(n) for n in getattr(m, "parts", ())]
    steps = [s for p in parts if callable(getattr(p, "post", None)) for s in p.post().steps if isinstance(s, FocusPart)]
    if not steps:
        raise SystemExit(f"{method} runs no focus_part step")
    step, cache, leasts = steps[0], {}, (0.0, 0.02, 0.05, 0.1)
    below = {least: 0 for least in leasts}
    sharp_worst = {least: math.inf for least in leasts}
    with mock.patch.object(FocusPart, "declines", lambda self, x: [False] * x.reference.shape[0]):  # check off
        for ci, cond in enumerate(conditions):
            kind = CONDITIONS[cond][0]
            if kind not in ("sharp", "blur"):
                continue
            print(f"{cond}: gain (sharp: PSNR) with the check off, share in focus, deconvolution took it", flush=True)
            for pi, photo in enumerate(photos):
                item = make_item(photo, cond, seed=1000 * ci + pi)  # the seeds run_method uses
                out = np.clip(deblur_as_run(method, item.left, None, srgb=True, domain="dslr", cache=cache)[0], 0, 1)
                took = not np.array_equal(
                    np.clip(deblur_as_run("deconv_single", item.left, None, srgb=True, domain="dslr", cache=cache)[0],
                            0, 1), np.clip(item.left, 0, 1))
                x = PostInput(torch.from_numpy(np.ascontiguousarray(item.left))[None].float(), None, True)
                share = float(step.share(x.reference, x)[0])
                raw = psnr_db(out, item.reference) - (0.0 if kind == "sharp" else psnr_db(item.baseline,
                                                                                          item.reference))
                for least in leasts:
                    kept = took or share >= least
                    if kind == "sharp":
                        sharp_worst[least] = min(sharp_worst[least], raw if kept else math.inf)
                    elif cond in DISCS:
                        below[least] += kept and raw < 0
                print(f"  {photo.name:20s} {raw:+7.2f}  share {share:5.3f}  {'deconvolution' if took else ''}",
                      flush=True)
    print("least share: photos below their input over " + "/".join(c for c in DISCS if c in conditions)
          + "; sharp photos' worst PSNR")
    for least in leasts:
        print(f"  {least:4.2f}{' (no check)' if least == 0 else ''}: {below[least]} below; "
              f"sharp worst {sharp_worst[least]:.1f} dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="auto", help="comma list of method names (`dpdeblur models`) and auto")
    ap.add_argument("--half", default="report", choices=["tune", "report", "all"])
    ap.add_argument("--sources", default="plasma,pypi,leaves")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--limit", type=int, default=None, help="at most this many photos per source")
    ap.add_argument("--crops", type=Path, default=None, help="folder for input | output | sharp crops (PNG)")
    ap.add_argument("--json", type=Path, default=None, help="write every photo's scores as JSON")
    ap.add_argument("--write", action="store_true", help="record each method's tuning-half figures in "
                    "dpcli/methods/measured.json (\"broad\"), which the defaults of `run` read (needs --half tune)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="the networks' "
                    "arithmetic, as `run --precision` (bf16 runs natively on AVX-512 BF16 / AMX CPUs, emulated and "
                    "slow elsewhere)")
    ap.add_argument("--dp-consistency", action="store_true", help="the study of docs/broad.md instead: each "
                    "method's colour-pair outputs made consistent with the blur the pair's disparity measures")
    ap.add_argument("--blur-check", action="store_true", help="the study of docs/broad.md instead: what the "
                    "blur check measures on each colour-pair output made without it, and what it would keep")
    ap.add_argument("--focus-part", action="store_true", help="the study of docs/broad.md instead: the share of "
                    "each single photo the in-focus check reads in focus, and what each least share would leave")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photos = load_photos(args.sources.split(","), args.half, args.limit)
    by_source = {s: sum(p.source == s for p in photos) for s in args.sources.split(",")}
    print(f"{len(photos)} photos ({args.half} half: {by_source})", flush=True)
    conditions = args.conditions.split(",")
    study = (dp_consistency if args.dp_consistency else blur_check_study if args.blur_check
             else focus_part_study if args.focus_part else None)
    if study is not None:
        for name in args.methods.split(","):
            study(name, photos, conditions)
        return
    cache: dict = {}
    everything = {}
    for name in args.methods.split(","):
        t = time.perf_counter()
        print(f"\n{name}", flush=True)
        everything[name] = run_method(name, photos, conditions, cache, args.crops, args.precision)
        print(f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"\n| method | condition | {len(photos)} photos, {args.half} half |\n|---|---|---|")
    for name, res in everything.items():
        for cond, per in res.items():
            print(f"| {name} | {cond} | {summary_cells(per, CONDITIONS[cond][0])} |")
    if args.write:
        if args.half != "tune":
            raise SystemExit("--write records the tuning half only (--half tune): the report half is for reporting")
        write_measured(everything, len(photos))
    if args.json:
        args.json.write_text(json.dumps({"half": args.half, "photos": len(photos), "results": everything},
                                        indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
