"""The harness every benchmark script shares (run as ``python benchmarks/NAME.py``, so this folder is
on ``sys.path``): the real dev scenes, the separate-process peak-memory measurement, the
``dpcli/methods/measured.json`` writer, and subcommands."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch

from dpcli.timing import peak_rss_gib  # noqa: F401  (re-exported: the scripts' peak memory)
from dpcli.timing import reset_peak_rss as _reset_peak_mark

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "dpcli" / "methods" / "measured.json"
PIXEL4_DEV = ["002", "006", "009", "013"]


# ------------------------------------------------------------------------------------ dev scenes
def dev_data() -> Path:
    """The shared folder with the real dev scenes (``DPDEBLUR_SHARED``, default ../shared)."""
    return Path(os.environ.get("DPDEBLUR_SHARED", "../shared"))


class DevScene(NamedTuple):
    """One real dev scene as ``run`` sees it: the two views in file order, the combined capture (the
    input every protocol scores), how it is encoded, its score function (the published protocol,
    returning psnr / ssim / ...) and the loaded scene (ground truth ``scene.gt``)."""
    domain: str
    name: str
    a: np.ndarray
    b: np.ndarray
    combined: np.ndarray
    srgb: bool
    score: Callable
    scene: object


def dev_scenes(shared: Path | None = None, domains=("phone", "dslr"), limit: int | None = None
               ) -> Iterator[DevScene]:
    """The dev scenes of ``domains``, phone first. Phone: the 4 Pixel 4 scenes, preprocessed (black
    level, 14-bit, white-sheet gain), the GT crop alone, views clipped to [0, 1] (what `dpdeblur run
    CROPS -o OUT --linear` sees). Dslr: the 4 Canon DPDD GIF scenes (8-bit sRGB), label corner masked
    by the score. ``limit``: at most this many scenes per domain."""
    from dpcli.metrics.protocols import (list_canon_scenes, load_canon_scene, load_pixel4_scene, score_canon,
                                         score_pixel4)

    shared = dev_data() if shared is None else shared
    if "phone" in domains:
        for sid in PIXEL4_DEV[:limit]:
            sc = load_pixel4_scene(shared / "data" / "pixel4", sid, swap_lr=False)  # file order
            left, right = np.clip(sc.crop_view(sc.left), 0, 1), np.clip(sc.crop_view(sc.right), 0, 1)
            yield DevScene("phone", sid, left, right, sc.crop_view(sc.combined), False,
                           lambda img, sc=sc: score_pixel4(img, sc), sc)
    if "dslr" in domains:
        canon = shared / "data" / "canon-dpdd-gif"
        for sid in list_canon_scenes(canon)[:limit]:
            sc = load_canon_scene(canon, sid)
            yield DevScene("dslr", f"canon_{sid}", sc.view_a, sc.view_b, sc.combined, True,
                           lambda img, sc=sc: score_canon(img, sc), sc)


def named_method(method: str):
    """(options, chooser) of the per-item pipeline ``run`` uses, with ``--method NAME`` on the CPU."""
    from dpcli.pipeline import MethodChooser, Options

    options = Options(method=method, runtime={"device": "cpu"})
    return options, MethodChooser.of(options)


# ------------------------------------------------------------------------------------ running as `run`
def deblur_as_run(name: str, left: np.ndarray, right: np.ndarray | None, *, srgb: bool, domain: str,
                  cache: dict, precision: str = "auto") -> tuple[np.ndarray, str]:
    """What `dpdeblur run` does with one item: the per-item pipeline itself (:func:`dpcli.pipeline.process`:
    ``auto`` -> the best measured method of the data's domain, pairs oriented, the method's post
    stages, the image clipped to [0, 1] as written). ``domain`` is what the case expects; the
    pipeline decides it from the data and a mismatch is an error here. ``precision``: as `run
    --precision` (the networks' arithmetic; auto, as run: bf16 where measured harmless and native).

    Returns: (image (C, H, W) float32, the method name that ran).
    """
    from dpcli.pipeline import MethodChooser, Options, Source, Views, process

    key = ("pipeline", name, precision)
    if key not in cache:  # one chooser per method name: each method is built once per benchmark
        options = Options(method=name, runtime={"device": "cpu", "precision": precision})
        cache[key] = options, MethodChooser.of(options)
    options, chooser = cache[key]
    done = process(Views.from_arrays(left, right), Source(srgb=srgb), options, chooser)
    if done.domain != domain:
        raise LookupError(f"the pipeline calls this {done.domain} data, the case says {domain}")
    return np.asarray(done.image, np.float32), done.method.name


def psnr_db(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR (dB) of ``a`` against ``b`` over ``mask`` (inf where they are equal)."""
    err = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    mse = float(err[..., mask].mean() if mask is not None else err.mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


def shown_srgb(x: np.ndarray, srgb: bool) -> torch.Tensor:
    """The image as it is shown: sRGB values (linear images encoded)."""
    from dpcli.optics import linear_to_srgb

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    return t if srgb else linear_to_srgb(t.clamp(0, 1))


def densest_crop(density: torch.Tensor, size: int) -> tuple[int, int]:
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

    y, x = densest_crop(where, size)
    tiles = []
    for p in panels:
        t = shown_srgb(p, srgb).numpy()[:, y:y + size, x:x + size]
        t = np.repeat(t, 3, 0) if t.shape[0] == 1 else t
        tiles.append(t.transpose(1, 2, 0))
        tiles.append(np.ones((tiles[-1].shape[0], 4, 3), np.float32))
    img = Image.fromarray((np.clip(np.concatenate(tiles[:-1], 1), 0, 1) * 255).round().astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.resize((img.width * 2, img.height * 2), Image.NEAREST).save(path)


# ------------------------------------------------------------------------------------ memory
def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark after a garbage collection (:func:`dpcli.timing.reset_peak_rss`)."""
    import gc

    gc.collect()
    _reset_peak_mark()


def cpu_facts() -> dict:
    """The machine a timing ran on: the CPU's name, its core count, and whether it has AVX-512,
    AVX-512 BF16 and AMX (Linux /proc/cpuinfo; "unknown" / False elsewhere)."""
    name, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name == "unknown":
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": name, "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags,
            "avx512f": "avx512f" in flags, "cores": os.cpu_count()}


def in_own_process(script: str, args: list, env: dict | None = None) -> dict:
    """Run ``python SCRIPT ARGS`` in a process of its own, so the peak memory it reports is its run's
    alone, and return the JSON object its last stdout line prints; ``{"error": last stderr line}`` if
    it failed."""
    res = subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ measured.json
def update_measured(update: Callable[[dict], None], path: Path = MEASURED) -> Path:
    """Apply ``update`` to the figures `run` ranks its defaults by (dpcli/methods/measured.json) and
    write them back atomically; returns the path."""
    data = json.loads(path.read_text())
    update(data)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------ scripts
def subcommands(commands: dict[str, Callable[[list[str]], None]], default: str | None = None,
                argv: list[str] | None = None) -> None:
    """``python SCRIPT COMMAND [options]``: run ``commands[COMMAND](options)``; with ``default``, a
    first argument that names no command runs the default with every argument."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    asks_help = bool(argv) and argv[0] in ("-h", "--help")
    if default is not None and not asks_help:
        return commands[default](argv)
    names = " | ".join(commands)
    print(f"usage: python {Path(sys.argv[0]).name} {{{names}}} [options]   (COMMAND --help for its options)")
    for name, fn in commands.items():
        print(f"  {name:12s} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
    if default is not None:
        print(f"  (no command: {default})")
    raise SystemExit(0 if asks_help else 2)


def perceptual_options(model: str) -> tuple[dict, str | None]:
    """(stage options, note) for training ``model``: DefocusGAN's VGG perceptual loss needs the
    converted VGG16 weights (``dpdeblur convert-lpips``); without them it trains without that loss
    and the note says why, so a fresh machine runs the scripts (and their smoke tests) as is."""
    from dpcli.metrics.lpips import weights_available, weights_path

    if model != "defocusgan" or weights_available("vgg"):
        return {}, None
    return {"perceptual": False}, (f"perceptual loss off: no converted VGG16 weights at {weights_path('vgg')} "
                                   "(`dpdeblur convert-lpips` makes them)")
