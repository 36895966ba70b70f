"""`dpdeblur defocus-map`: signed blur-radius maps (px) from DP pairs by three estimators."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from dpcli.cli.app import app
from dpcli.cli.common import (BLACK_LEVEL_OPTION, DEVICE_OPTION, JSON_OPTION, OVERWRITE_OPTION, QUIET_OPTION,
                              RAW_OUTPUT_OPTION, SWAP_LR_OPTION, THREADS_OPTION, TILE_OPTION, VERBOSE_OPTION,
                              WHITE_LEVEL_OPTION, WHITE_SHEET_LEFT_OPTION, WHITE_SHEET_RIGHT_OPTION, ItemResult,
                              raw_options, require_inputs, run_batch)
from dpcli.errors import DpError, InputError

METHODS = ("classical", "net", "zeroshot")

_EPILOG = """Examples:

  dpdeblur defocus-map scene_L.png scene_R.png -o maps/                   # classical, sRGB views

  dpdeblur defocus-map DPDD/test_c/../ -o maps/ --method net --weights coc.safetensors

  dpdeblur defocus-map pixel4/002_left.png pixel4/002_right.png -o maps/ --black-level 1024 \\
      --white-sheet-left cal/white_sheet_left.png --white-sheet-right cal/white_sheet_right.png \\
      --swap-lr --min-radius 0 --max-radius 12 --confidence

Outputs per pair: NAME_defocus.tiff (float32 signed radius in px, exact), NAME_defocus.png (colour
preview with a colour bar and the radius range), NAME_defocus.npy with --npy, and
NAME_confidence.png with --confidence (classical).
"""


@app.command("defocus-map", epilog=_EPILOG)
def defocus_map_command(
    inputs: list[Path] = typer.Argument(..., help="DP pairs: NAME_L/NAME_R files, left/ + right/ folders, DPDD "
                                        "folders, Dual Pixel RAW."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
    method: str = typer.Option("classical", "--method", help="classical (training-free, fast) | net (COC / "
                               "defocus network) | zeroshot (MPI optimiser, slow)."),
    model: str = typer.Option("bambnet", "--model", help="net: bambnet (COC net) | defocusgan | an architecture."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="net: checkpoint (ours or official)."),
    min_radius: float = typer.Option(-12.0, "--min-radius", help="classical: smallest signed radius (px) searched."),
    max_radius: float = typer.Option(12.0, "--max-radius", help="classical: largest signed radius (px) searched."),
    srgb: str = typer.Option("auto", "--srgb", help="auto (image files are sRGB, raw planes linear) | yes | no."),
    time_budget: float = typer.Option(0.0, "--time-budget", help="zeroshot: seconds per pair (0 = the schedule's own)."),
    npy: bool = typer.Option(False, "--npy", help="Also write NAME_defocus.npy."),
    confidence: bool = typer.Option(False, "--confidence", help="classical: also write NAME_confidence.png."),
    swap_lr: bool = SWAP_LR_OPTION,
    black_level: Optional[float] = BLACK_LEVEL_OPTION,
    white_level: Optional[float] = WHITE_LEVEL_OPTION,
    white_sheet_left: Optional[Path] = WHITE_SHEET_LEFT_OPTION,
    white_sheet_right: Optional[Path] = WHITE_SHEET_RIGHT_OPTION,
    raw_output: str = RAW_OUTPUT_OPTION,
    device: str = DEVICE_OPTION,
    tile: Optional[int] = TILE_OPTION,
    threads: int = THREADS_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    verbose: bool = VERBOSE_OPTION,
    json_summary: bool = JSON_OPTION,
) -> None:
    """Estimate the signed defocus map (blur radius in px; + behind the focal plane) of DP pairs."""
    from dpcli.device import set_threads
    from dpcli.io.pairs import discover_inputs, input_paths

    if method not in METHODS:
        raise DpError(f"--method {method}: expected one of {', '.join(METHODS)}")
    if srgb not in ("auto", "yes", "no"):
        raise DpError(f"--srgb {srgb}: expected auto, yes or no")
    if min_radius >= max_radius:
        raise DpError(f"--min-radius {min_radius} must be below --max-radius {max_radius}")
    require_inputs(inputs)
    set_threads(threads)
    raw = raw_options(black_level, white_level, white_sheet_left, white_sheet_right, raw_output)
    items = discover_inputs(inputs, exclude=[output])
    if not items:
        raise InputError("no images found", inputs[0])
    output.mkdir(parents=True, exist_ok=True)
    protected = input_paths(items)
    estimate = _estimator(method, model, weights, device, tile, min_radius, max_radius, time_budget)

    def process(item) -> ItemResult:
        from dpcli.io.images import write_image
        from dpcli.io.pairs import BadInput, is_pair, load_pair
        from dpcli.io.preview import write_defocus_outputs

        if isinstance(item, BadInput):
            raise item.error()
        if not is_pair(item):
            raise InputError("defocus-map needs a dual-pixel pair (NAME_L/NAME_R, left/ + right/, DPDD, DP RAW)",
                             getattr(item, "path", None))
        start = time.perf_counter()
        expected = output / f"{item.name}_defocus.tiff"
        if expected.exists() and not overwrite:
            return ItemResult(item.name, status="skipped", outputs=[str(expected)],
                              message="outputs exist (--overwrite to redo)")
        pair = load_pair(item, swap_lr=swap_lr, raw=raw, with_target=False)
        is_srgb = (raw.black_level is None and raw.output != "linear") if srgb == "auto" else srgb == "yes"
        radius, conf = estimate(pair.left, pair.right, is_srgb)
        outputs = write_defocus_outputs(output, item.name, radius, npy=npy, overwrite=overwrite, protected=protected)
        if confidence and conf is not None:
            outputs.append(str(write_image(output / f"{item.name}_confidence.png", np.asarray(conf)[None], 8,
                                           overwrite=overwrite, protected=protected)))
        r = np.asarray(radius)
        return ItemResult(item.name, outputs=outputs, seconds=time.perf_counter() - start,
                          metrics={"r_min": float(r.min()), "r_median": float(np.median(r)), "r_max": float(r.max())})

    code = run_batch(items, process, lambda it: it.name, title=f"defocus maps ({method})", quiet=quiet,
                     verbose=verbose, json_summary=json_summary, metric_columns=("r_min", "r_median", "r_max"))
    raise typer.Exit(code)


def _estimator(method: str, model: str, weights: Optional[Path], device: str, tile: Optional[int],
               min_radius: float, max_radius: float, time_budget: float = 0.0):
    """-> fn(left, right, srgb) -> (radius (H, W), confidence (H, W) or None)."""
    if method == "classical":
        from dpcli.classical import estimate_defocus_classical

        def classical(left, right, srgb):
            return estimate_defocus_classical(left, right, srgb=srgb, min_radius=min_radius, max_radius=max_radius)
        return classical
    if method == "net":
        from dpcli.api import load_session

        session = load_session(model, "coc", weights=weights, device=device, tile=tile)

        def net(left, right, srgb):
            coc = np.asarray(session.estimate_coc(left, right))
            return (coc[0] if coc.ndim == 3 else coc), None
        return net
    from dpcli.zeroshot import make_config, zeroshot_deblur

    config = make_config("fast", time_budget=time_budget or None)

    def zeroshot(left, right, srgb):
        if srgb:  # the MPI optimiser works on linear views
            import torch

            from dpcli.optics import srgb_to_linear

            left = srgb_to_linear(torch.as_tensor(left).clamp(0, 1)).numpy()
            right = srgb_to_linear(torch.as_tensor(right).clamp(0, 1)).numpy()
        return zeroshot_deblur(left, right, config).defocus, None
    return zeroshot
