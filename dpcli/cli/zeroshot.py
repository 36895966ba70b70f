"""`dpdeblur zeroshot LEFT RIGHT -o OUT`: per-scene zero-shot MPI deblurring (thesis 004)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from dpcli.cli.app import app
from dpcli.cli.common import (DEVICE_OPTION, JSON_OPTION, OVERWRITE_OPTION, PRECISION_OPTION,
                              SWAP_LR_OPTION, THREADS_OPTION, ItemResult, console_err, parse_bit_depth,
                              require_inputs, run_batch)
from dpcli.errors import DpError, InputError

_EPILOG = """
Examples:

  dpdeblur zeroshot scene_L.png scene_R.png -o out/

  # Pixel 4 raw planes (black level 1024, 14-bit), vignetting from a white-sheet pair; the Pixel 4
  # file named left behaves like our right view, hence --swap-lr:
  dpdeblur zeroshot 002_left.png 002_right.png -o out/ --black-level 1024 --white-level 16383 \\
      --white-sheet white_sheet_left.png white_sheet_right.png --swap-lr --time-budget 300

  # a camera whose DP views separate like RDPD's kernels (DSLR-like), full method output:
  dpdeblur zeroshot L.png R.png -o out/ --kernel-beta 0.1 --output-stage kernels

  # with the camera's measured kernels (48 kernels for the 6 x 8 patch grid):
  dpdeblur zeroshot L.png R.png -o out/ --kernels calibration/ --swap-lr --debug
"""


def _kernel_files(folder: Path) -> tuple[Path, Path]:
    folder = Path(folder)
    if folder.is_file():
        raise InputError("--kernels expects a folder holding blur_kernels_left.npy and "
                         "blur_kernels_right.npy", folder)
    left, right = folder / "blur_kernels_left.npy", folder / "blur_kernels_right.npy"
    for path in (left, right):
        if not path.is_file():
            raise InputError("missing calibration kernel file", path)
    return left, right


def _kernel_grid(kernels: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(2, S, P, K, K) -> grey mosaic (1, rows, cols): per side, left row block then right."""
    two, s, p, k, _ = kernels.shape
    gy, gx = grid
    blocks = []
    for side in range(s):
        for view in range(two):
            ks = kernels[view, side].reshape(gy, gx, k, k)
            ks = ks / max(float(ks.max()), 1e-12)
            padded = np.pad(ks, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.25)
            blocks.append(padded.transpose(0, 2, 1, 3).reshape(gy * (k + 2), gx * (k + 2)))
    return np.concatenate(blocks, 0)[None].astype(np.float32)


def _loss_curve_png(losses: dict[str, list[float]], height: int = 240, width: int = 640) -> np.ndarray:
    """Loss curves (log scale) drawn with numpy only: (3, H, W) float, one colour per stage."""
    img = np.ones((3, height, width), np.float32)
    colours = [(0.8, 0.1, 0.1), (0.1, 0.3, 0.8), (0.1, 0.6, 0.1)]
    curves = [np.asarray(v, np.float64) for v in losses.values() if len(v)]
    if not curves:
        return img
    total = sum(len(c) for c in curves)
    allv = np.log10(np.concatenate(curves).clip(1e-12))
    lo, hi = float(allv.min()), float(allv.max())
    hi = hi if hi > lo else lo + 1
    x0 = 0
    img[:, height - 1, :] = 0
    img[:, :, 0] = 0
    for ci, c in enumerate(curves):
        xs = ((x0 + np.arange(len(c))) * (width - 1) / max(total - 1, 1)).astype(int)
        ys = ((1 - (np.log10(c.clip(1e-12)) - lo) / (hi - lo)) * (height - 5) + 2).astype(int)
        for k in range(len(xs)):  # draw segments with a few interpolated points
            y_prev = ys[k - 1] if k else ys[k]
            for y in range(min(y_prev, ys[k]), max(y_prev, ys[k]) + 1):
                img[:, y, xs[k]] = colours[ci % 3]
        x0 += len(c)
    return img


@app.command("zeroshot", epilog=_EPILOG)
def zeroshot_command(
    left: Path = typer.Argument(..., help="Left view (image, or raw plane with --black-level)."),
    right: Path = typer.Argument(..., help="Right view."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
    name: Optional[str] = typer.Option(None, "--name", help="Output name stem (default: from LEFT)."),
    schedule: str = typer.Option("fast", "--schedule", help="fast (<= 5 min for 1344x1008 on 2 cores) | paper "
                                 "(the thesis' iterative stage 1, dense G_F, long iteration counts)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds for the whole run; "
                                                "stages stop early to meet it."),
    layers: Optional[int] = typer.Option(None, "--layers", help="MPI layers per focus side, N + 1 (default 18)."),
    max_radius: Optional[float] = typer.Option(None, "--max-radius", help="Blur radius of the last layer, px "
                                               "(default 17: 35x35 kernels)."),
    kernel_beta: Optional[float] = typer.Option(None, "--kernel-beta", help="Ramp floor of the parametric "
                                                "DP kernels (default 0.5; RDPD's 0.1 separates the views more)."),
    focus: str = typer.Option("front", "--focus", help="front (behind the focal plane, Pixel 4) | back | both."),
    init: Optional[str] = typer.Option(None, "--init", help="closed (exact Fourier LS, default) | iterative."),
    kernels: Optional[Path] = typer.Option(None, "--kernels", help="Folder with measured kernels "
                                           "blur_kernels_{left,right}.npy (Pixel 4 calibration format)."),
    # Default "init": on our Pixel 4 dev scenes the later stages lower PSNR (blind: init 32.56, G_D 30.96,
    # kernels 32.50 dB mean; calibrated: init 33.11, kernels 32.84).
    output_stage: str = typer.Option("init", "--output-stage", help="Which stage's image NAME.png holds: "
                                     "init (stage-1 layers picked by their L/R reblur residual; best on our "
                                     "Pixel 4 dev set, hence the default) | defocus (after G_D) | kernels "
                                     "(full method, after the learned kernels)."),
    grid: str = typer.Option("6x8", "--grid", help="Kernel patch grid ROWSxCOLS (must match --kernels)."),
    black_level: Optional[float] = typer.Option(None, "--black-level", help="Raw planes: black level (Pixel 4: 1024)."),
    white_level: Optional[float] = typer.Option(None, "--white-level", help="Raw planes: divisor after black "
                                                "subtraction (Pixel 4: 16383)."),
    white_sheet: Optional[tuple[Path, Path]] = typer.Option(None, "--white-sheet", help="Raw planes: white-sheet "
                                                            "LEFT RIGHT pair for the vignetting gain."),
    swap_lr: bool = SWAP_LR_OPTION,
    srgb: bool = typer.Option(False, "--srgb/--linear", help="Inputs are sRGB-encoded (linearised for the "
                              "optimisation, re-encoded on output). Default: linear (raw) data."),
    debug: bool = typer.Option(False, "--debug", help="Also write the MPI layers, defocus weights, per-stage "
                               "images and a loss-curve PNG."),
    bit_depth: str = typer.Option("input", "--bit-depth", help="Output bit depth: input | 8 | 16 | 32f."),
    device: str = DEVICE_OPTION,
    precision: str = PRECISION_OPTION,
    threads: int = THREADS_OPTION,
    seed: int = typer.Option(0, "--seed", help="Random seed (networks, crops)."),
    overwrite: bool = OVERWRITE_OPTION,
    json_summary: bool = JSON_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the final line."),
) -> None:
    """Deblur one dual-pixel pair with the zero-shot MPI method (no training data needed).

    Writes NAME.png (all-in-focus, input bit depth), NAME_defocus.tiff (signed blur radius, px)
    and NAME_defocus.png (preview), NAME_kernels.npy (2 x S x P x K x K learned kernels: left/right,
    focus side, patch) and NAME_kernels.png.
    """
    from dpcli.device import set_threads

    set_threads(threads or 2)
    require_inputs([left, right])
    try:
        gy, gx = (int(v) for v in grid.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--grid {grid}: expected ROWSxCOLS, e.g. 6x8") from None
    stem = name or left.stem.removesuffix("_left").removesuffix("_L").removesuffix("_l")

    def process(_item) -> ItemResult:
        return _run(left, right, output, stem, schedule, time_budget, layers, max_radius, kernel_beta, focus, init,
                    kernels, (gy, gx), output_stage, black_level, white_level, white_sheet, swap_lr, srgb, debug,
                    bit_depth, device, precision, seed, overwrite, quiet or json_summary)

    code = run_batch([stem], process, lambda s: s, title="zeroshot", quiet=quiet, json_summary=json_summary,
                     metric_columns=("seconds_total", "defocus_min", "defocus_max"))
    raise typer.Exit(code)


def _run(left: Path, right: Path, output: Path, stem: str, schedule: str, time_budget, layers, max_radius,
         kernel_beta, focus: str, init, kernels: Path | None, grid: tuple[int, int], output_stage: str, black_level, white_level, white_sheet,
         swap_lr: bool, srgb: bool, debug: bool, bit_depth: str, device: str, precision: str, seed: int,
         overwrite: bool, quiet: bool) -> ItemResult:
    from dpcli.io.images import write_image
    from dpcli.io.pairs import PairInput, RawOptions, load_pair
    from dpcli.optics import linear_to_srgb, load_measured_kernels, srgb_to_linear
    from dpcli.zeroshot import make_config, zeroshot_deblur

    import torch

    if focus not in ("front", "back", "both"):
        raise DpError(f"--focus {focus}: expected front, back or both")
    if output_stage not in ("init", "defocus", "kernels"):
        raise DpError(f"--output-stage {output_stage}: expected init, defocus or kernels")
    if init not in (None, "closed", "iterative"):
        raise DpError(f"--init {init}: expected closed or iterative")
    raw = RawOptions(black_level=black_level, white_level=white_level,
                     white_sheet_left=white_sheet[0] if white_sheet else None,
                     white_sheet_right=white_sheet[1] if white_sheet else None)
    out = Path(output)
    main_out = out / f"{stem}.png"
    if main_out.exists() and not overwrite:
        return ItemResult(name=stem, status="skipped", outputs=[str(main_out)],
                          message=f"{main_out} exists (use --overwrite)")
    item = PairInput(name=stem, left=left, right=right)
    pair = load_pair(item, swap_lr=swap_lr, raw=raw)
    yl, yr = pair.left, pair.right
    if srgb:
        yl = srgb_to_linear(torch.from_numpy(yl)).numpy()
        yr = srgb_to_linear(torch.from_numpy(yr)).numpy()
    measured = None
    if kernels is not None:
        fl, fr = _kernel_files(kernels)
        kl, kr = load_measured_kernels(fl, fr)
        if swap_lr:  # the kernels belong to the files: they swap with them, explicitly
            kl, kr = kr, kl
        measured = (kl.numpy(), kr.numpy())
    if kernel_beta is not None and not 0.0 <= kernel_beta < 1.0:
        raise DpError(f"--kernel-beta {kernel_beta}: expected a value in [0, 1)")
    cfg = make_config(schedule, layers=layers, max_radius=max_radius, kernel_beta=kernel_beta, focus=focus, init=init,
                      time_budget=time_budget, precision=precision, device=device, seed=seed,
                      grid=grid, keep_layers=debug, output_stage=output_stage)
    say = (lambda msg: None) if quiet else (lambda msg: console_err.print(f"{stem}: {msg}", highlight=False))
    start = time.perf_counter()
    res = zeroshot_deblur(yl, yr, cfg, measured_kernels=measured, progress=say)
    if res.info.get("output_stage") != "kernels" or res.info.get("defocus_source") != "G_D":
        say(f"note: defocus from {res.info['defocus_source']}; output from {res.info['output_stage']} "
            "(raise --time-budget for the full optimisation)")
    out.mkdir(parents=True, exist_ok=True)
    protected = {left.resolve(), right.resolve()}
    depth = parse_bit_depth(bit_depth, pair.bit_depth)

    def encode(img: np.ndarray) -> np.ndarray:
        img = np.clip(img, 0, None)
        if srgb:
            img = linear_to_srgb(torch.from_numpy(np.ascontiguousarray(img))).numpy()
        return np.clip(img, 0, 1)

    outputs = [write_image(out / f"{stem}.png", encode(res.aif), depth, overwrite=overwrite, protected=protected)]
    from dpcli.io.preview import write_defocus_outputs

    outputs += write_defocus_outputs(out, stem, res.defocus, overwrite=overwrite, protected=protected)
    kern = np.stack([res.kernels_left, res.kernels_right]).astype(np.float32)
    from dpcli.io.images import atomic_write_bytes
    import io

    buf = io.BytesIO()
    np.save(buf, kern)
    kpath = out / f"{stem}_kernels.npy"
    atomic_write_bytes(kpath, buf.getvalue(), overwrite=overwrite, protected=protected)
    outputs.append(kpath)
    outputs.append(write_image(out / f"{stem}_kernels.png", _kernel_grid(kern, grid), 8,
                               overwrite=overwrite, protected=protected))
    if debug:
        dbg = out / f"{stem}_debug"
        dbg.mkdir(exist_ok=True)
        for i, layer in enumerate(res.layers if res.layers is not None else []):
            r = float(res.radii[i])
            write_image(dbg / f"layer_{i:02d}_r{r:+.1f}.png", encode(layer), 16, overwrite=True)
            write_image(dbg / f"weight_{i:02d}_r{r:+.1f}.png", np.clip(res.weights[i][None], 0, 1), 8,
                        overwrite=True)
        for k, v in res.stage_images.items():
            write_image(dbg / f"stage_{k}.png", encode(v), 16, overwrite=True)
        write_image(dbg / "loss_curve.png", _loss_curve_png(res.losses), 8, overwrite=True)
        (dbg / "run.json").write_text(json.dumps({"timings": res.timings, "info": res.info,
                                                  "config": {k: str(v) for k, v in vars(cfg).items()}},
                                                 indent=2))
        outputs.append(dbg)
    seconds = time.perf_counter() - start
    return ItemResult(name=stem, outputs=[str(o) for o in outputs], seconds=seconds,
                      metrics={"seconds_total": seconds, "defocus_min": float(res.defocus.min()),
                               "defocus_max": float(res.defocus.max())})
