"""`dpdeblur zeroshot LEFT RIGHT -o OUT`: per-scene zero-shot MPI deblurring (thesis 004)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from dpcli.cli.app import app
from dpcli.cli.batch import naming, require_inputs, run_batch
from dpcli.cli.console import console_err
from dpcli.cli.inputs import resolve_input
from dpcli.cli.output_plan import OutputPlan
from dpcli.cli.result import ItemResult
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, renamed, with_bundles
from dpcli.errors import DpError, InputError

if TYPE_CHECKING:  # numpy is imported where the command runs: `--help` stays light
    import numpy as np


_EPILOG = """
Examples:

  # which view is left: read from the pair
  dpdeblur zeroshot scene_L.png scene_R.png -o out_zeroshot/

  # Pixel 4 raw planes, levels from the camera profile, vignetting from
  # a white-sheet pair:
  dpdeblur zeroshot 002_left.png 002_right.png -o out/ --camera pixel4 \\
      --white-sheet white_sheet_left.png white_sheet_right.png

  # with the camera's measured kernels (put in our L/R order from their
  # own shape, like the views):
  dpdeblur zeroshot 002_left.png 002_right.png -o out/ --camera pixel4 \\
      --kernels calibration/

  # the full method (stages 2 and 3, minutes), within a time budget:
  dpdeblur zeroshot L.png R.png -o out/ --output-stage kernels \\
      --time-budget 300

  # the layer choice by the residual rule, or by fusion weights you trained:
  dpdeblur zeroshot L.png R.png -o out/ --fusion residual
  dpdeblur zeroshot L.png R.png -o out/ \\
      --fusion-weights runs/fusion/fusion.safetensors
"""


def _kernel_grid(kernels: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(2, S, P, K, K) -> grey mosaic (1, rows, cols): per side, left row block then right."""
    import numpy as np

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
    import numpy as np

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
@with_bundles
def zeroshot_command(
    left: Path = typer.Argument(..., help="Left view (image, or raw plane with --black-level / --camera)."),
    right: Path = typer.Argument(..., help="Right view."),
    name: Optional[str] = typer.Option(None, "--name", help="Output name stem (default: from LEFT)."),
    schedule: str = typer.Option("fast", "--schedule", help="fast | paper (the thesis' recipe: "
                                 "iterative stage 1, full-resolution fusion, long iteration counts; minutes)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds for the whole run; "
                                                "stages stop early to meet it."),
    layers: Optional[int] = typer.Option(None, "--layers", help="MPI layers per focus side, N + 1 (default 18)."),
    max_radius: Optional[float] = typer.Option(None, "--last-layer-radius", help="Blur radius of the last "
                                               "MPI layer, px (default 17: 35x35 kernels)."),
    max_radius_alias: Optional[float] = typer.Option(None, "--max-radius", hidden=True),
    kernel_beta: Optional[float] = typer.Option(None, "--kernel-beta", help="Ramp floor of the parametric "
                                                "DP kernels (default 0.5; RDPD's 0.1 separates the views more)."),
    focus: Optional[str] = typer.Option(None, "--focus", help="Where the camera focused: front = near, blur behind "
                                        "the focal plane (default, or the camera profile's) | back | both."),
    init: Optional[str] = typer.Option(None, "--init", help="How stage 1 makes its layers: closed "
                                      "(one exact solve per layer, default) | iterative (gradient steps)."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Stage-1 layer choice: auto (default: learned "
                                         "where weights ship for the data, i.e. colour DSLR pairs, else "
                                         "residual) | residual (the layer whose reblur best explains both "
                                         "views) | learned (a small network trained on synthetic DP data)."),
    fusion_weights: Optional[Path] = typer.Option(None, "--fusion-weights", help="Weights of the learned "
                                                  "fusion (from python -m dpcli.zeroshot.fusion_train; implies "
                                                  "--fusion learned)."),
    kernels: Optional[Path] = typer.Option(None, "--kernels", help="Calibration folder with "
                                           "blur_kernels_{left,right}.npy (or its parent); put in our L/R order "
                                           "from their own shape, as the views are from theirs."),
    output_stage: str = typer.Option("init", "--output-stage", help="Which stage's image NAME.png holds; the "
                                     "run stops there: init (stage 1, seconds; best on our Pixel 4 dev set, "
                                     "hence the default) | defocus (after the defocus-map stage) | kernels "
                                     "(full method)."),
    grid: str = typer.Option("6x8", "--grid", help="Kernel patch grid ROWSxCOLS (must match --kernels)."),
    debug: bool = typer.Option(False, "--debug", help="Also write the MPI layers, defocus weights, per-stage "
                               "images and a loss-curve PNG."),
    seed: int = typer.Option(0, "--seed", help="Random seed (networks, crops)."),
    source: InputOptions = bundle(omit=("recursive",)),
    out: OutputOptions = bundle(required=("folder",)),
    dev: DeviceOptions = bundle(omit=("tile", "tile_overlap", "tta")),
) -> None:
    """Deblur one dual-pixel pair with the zero-shot MPI method (no training data needed).

    Writes NAME.png (all-in-focus; the input's format, bit depth and metadata,
    or --format), NAME_defocus.tiff (signed blur radius, px) and
    NAME_defocus.png (preview), NAME_kernels.npy (2 x S x P x K x K kernels:
    left/right, focus side, patch) and NAME_kernels.png. Which view is left is
    read from the pair (or --swap-lr / --no-swap-lr); the summary says which.
    """
    from dpcli.device import resolve_precision
    from dpcli.zeroshot import make_config

    max_radius = renamed(max_radius, max_radius_alias, "--last-layer-radius", "--max-radius")
    require_inputs([left, right])
    if left.resolve() == right.resolve():
        raise InputError("given as both LEFT and RIGHT; give the two views of a dual-pixel pair", left)
    try:
        gy, gx = (int(v) for v in grid.lower().split("x"))
    except ValueError:
        raise DpError(f"--grid {grid}: must be ROWSxCOLS, e.g. 6x8") from None
    resolved = resolve_input(source)
    cfg = make_config(schedule, layers=layers, max_radius=max_radius, kernel_beta=kernel_beta,
                      focus=focus or resolved.focus, init=init,
                      fusion=fusion or ("learned" if fusion_weights else None),
                      fusion_weights=str(fusion_weights) if fusion_weights else None, time_budget=time_budget,
                      precision=resolve_precision(dev.precision, dev.device), device=dev.device, seed=seed, grid=(gy, gx), keep_layers=debug,
                      output_stage=output_stage).validate()
    dev.apply_threads()
    from dpcli.pipeline import load_calibration

    calibration = load_calibration(kernels or resolved.kernels, resolved.focus)
    stem = name or left.stem.removesuffix("_left").removesuffix("_L").removesuffix("_l")
    folder = out.folder
    files = [out.photo_path(stem, left), folder / f"{stem}_defocus.tiff", folder / f"{stem}_defocus.png",
             folder / f"{stem}_kernels.npy", folder / f"{stem}_kernels.png"]
    recipe = {"command": "zeroshot", "config": {k: str(v) for k, v in vars(cfg).items() if k != "keep_layers"},
              "kernels": str(kernels or resolved.kernels or "") or None, "camera": source.camera,
              "srgb": resolved.source.srgb, "swap_lr": source.swap_lr, "black_level": resolved.source.black_level,
              "white_level": resolved.source.white_level, "bit_depth": out.bit_depth,
              "format": out.format, "quality": out.quality}
    plan = OutputPlan(folder=folder, recipe=recipe, outputs=lambda _s: files, inputs=lambda _s: [left, right],
                      overwrite=out.overwrite)

    def process(_item) -> ItemResult:
        from dpcli.io.pairs import PairInput

        with naming(PairInput(name=stem, left=left, right=right)):
            return _run(left, right, folder, stem, cfg, calibration, resolved, debug, out)

    def view(_stem):
        from dpcli.io.pairs import PairInput

        return resolved.input_view(PairInput(name=stem, left=left, right=right))

    code = run_batch([stem], process, lambda s: s, title="zeroshot", out=out, plan=plan,
                     metric_columns={"seconds_init": "stage 1 (s)",
                                     "defocus_min": "nearest blur (px)", "defocus_max": "farthest blur (px)"},
                     detail_columns={"orientation": "L/R order"},
                     input_view=view)
    raise typer.Exit(code)


def _run(left: Path, right: Path, out_dir: Path, stem: str, cfg, calibration, resolved, debug: bool,
         out: OutputOptions) -> ItemResult:
    import io

    import numpy as np

    from dpcli.arrays import encode as encode_array
    from dpcli.io.images import atomic_write_bytes, write_image
    from dpcli.io.pairs import PairInput
    from dpcli.io.preview import write_defocus_outputs
    from dpcli.methods.builtin import ZeroShotStage1
    from dpcli.pipeline import Options, process

    say = (lambda msg: None) if (out.quiet or out.json) else (
        lambda msg: console_err.print(f"{stem}: {msg}", highlight=False))
    start = time.perf_counter()
    method = ZeroShotStage1(config=cfg, device=cfg.device, precision=cfg.precision, progress=say)
    # calibration: in our orientation already, read from the kernels' own shape
    done = process(PairInput(name=stem, left=left, right=right), resolved.pipeline_source(),
                   Options(method=method, defocus=True, kernels=calibration))
    orientation, srgb = done.orientation, done.srgb
    say(f"views {orientation.describe()}")
    res = method.result
    stage = str(res.info.get("output_stage", ""))
    if "time budget" in stage or (cfg.output_stage != "init" and res.info.get("defocus_source") != "G_D"):
        say(f"note: defocus from {res.info['defocus_source']}; output from {stage} "
            "(raise --time-budget for the full optimisation)")
    protected = {left.resolve(), right.resolve()}
    encode = (lambda img: np.clip(encode_array(np.clip(img, 0, None), to_srgb=True), 0, 1)) if srgb else (
        lambda img: np.clip(img, 0, 1))
    outputs = [out.write_photo(stem, np.clip(done.image, 0, 1), done.bit_depth, source=left, stored=True,
                               protected=protected)]
    outputs += write_defocus_outputs(out_dir, stem, res.defocus, overwrite=True, protected=protected)
    kern = np.stack([res.kernels_left, res.kernels_right]).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, kern)
    kpath = out_dir / f"{stem}_kernels.npy"
    atomic_write_bytes(kpath, buf.getvalue(), overwrite=True, protected=protected)
    outputs.append(kpath)
    outputs.append(write_image(out_dir / f"{stem}_kernels.png", _kernel_grid(kern, cfg.grid), 8, overwrite=True,
                               protected=protected))
    if debug:
        dbg = out_dir / f"{stem}_debug"
        dbg.mkdir(exist_ok=True)
        for i, layer in enumerate(res.layers if res.layers is not None else []):
            r = float(res.radii[i])
            write_image(dbg / f"layer_{i:02d}_r{r:+.1f}.png", encode(layer), 16, overwrite=True)
            if res.weights is not None:
                write_image(dbg / f"weight_{i:02d}_r{r:+.1f}.png", np.clip(res.weights[i][None], 0, 1), 8,
                            overwrite=True)
        for k, v in res.stage_images.items():
            write_image(dbg / f"stage_{k}.png", encode(v), 16, overwrite=True)
        write_image(dbg / "loss_curve.png", _loss_curve_png(res.losses), 8, overwrite=True)
        (dbg / "run.json").write_text(json.dumps({"timings": res.timings, "info": res.info,
                                                  "orientation": orientation.describe(),
                                                  "config": {k: str(v) for k, v in vars(cfg).items()}},
                                                 indent=2, default=str))
        outputs.append(dbg)
    seconds = time.perf_counter() - start
    metrics = {f"seconds_{k}": float(v) for k, v in res.timings.items()}
    metrics.update({"defocus_min": float(res.defocus.min()), "defocus_max": float(res.defocus.max())})
    return ItemResult(name=stem, outputs=[str(o) for o in outputs], seconds=seconds, metrics=metrics,
                      details={"orientation": orientation.describe(), "method": "zeroshot",
                               "output_stage": stage})
