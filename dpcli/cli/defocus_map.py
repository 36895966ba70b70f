"""`dpdeblur defocus-map`: signed blur-radius maps (px) of DP pairs, from any method of the registry."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from dpcli.cli.app import app
from dpcli.cli.batch import gather_items, naming, require_inputs, run_batch, subfolder_note
from dpcli.cli.inputs import resolve_input
from dpcli.cli.output_plan import OutputPlan
from dpcli.cli.result import ItemResult
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, renamed, with_bundles
from dpcli.errors import DpError, InputError

_EPILOG = """Examples:

  # classical, L/R order detected
  dpdeblur defocus-map scene_L.png scene_R.png -o maps/

  # zero-shot stage-1 layer choice
  dpdeblur defocus-map pairs/ -o maps/ --method zeroshot

  # a COC network
  dpdeblur defocus-map dpdd/test -o maps/ --method net \\
      --weights coc.safetensors

  dpdeblur defocus-map pixel4/002_left.png pixel4/002_right.png -o maps/ \\
      --camera pixel4 --min-radius 0 --max-radius 12 --confidence \\
      --white-sheet cal/white_sheet_left.png cal/white_sheet_right.png

Outputs per pair: NAME_defocus.tiff (float32 signed radius in px, exact),
NAME_defocus.png (colour preview with a colour bar and the radius range),
NAME_defocus.npy with --npy, and NAME_confidence.png with --confidence
(classical). Radii are positive behind the focal plane.
"""


@app.command("defocus-map", epilog=_EPILOG)
@with_bundles
def defocus_map_command(
    inputs: list[Path] = typer.Argument(..., help="DP pairs: NAME_L/NAME_R files, left/ + right/ folders, DPDD "
                                        "folders, Dual Pixel RAW."),
    method: str = typer.Option("classical", "--method", help="classical (training-free, fast) | zeroshot "
                               "(stage-1 layer choice) | net (a COC / defocus network: --arch, --weights) | "
                               "a deblurring method of `dpdeblur models` (its own map)."),
    arch: str = typer.Option("bambnet", "--arch", help="net: bambnet (COC net) | defocusgan | an architecture."),
    model_alias: Optional[str] = typer.Option(None, "--model", hidden=True),
    weights: Optional[Path] = typer.Option(None, "--weights", help="net: checkpoint (ours or the authors')."),
    min_radius: float = typer.Option(-12.0, "--min-radius", help="classical: smallest signed radius (px) searched."),
    max_radius: float = typer.Option(12.0, "--max-radius", help="classical: largest signed radius (px) searched."),
    npy: bool = typer.Option(False, "--npy", help="Also write NAME_defocus.npy."),
    confidence: bool = typer.Option(False, "--confidence", help="classical: also write NAME_confidence.png."),
    source: InputOptions = bundle(),
    out: OutputOptions = bundle(omit=("format", "quality"), required=("folder",)),
    dev: DeviceOptions = bundle(omit=("tta",)),  # the deblurring networks' TTA; maps have none
) -> None:
    """Estimate the signed defocus map (blur radius in px; + behind the focal plane) of DP pairs."""
    from dpcli.io.pairs import BadInput, is_pair
    from dpcli.methods import get_method

    model = renamed(arch, model_alias, "--arch", "--model", "bambnet")
    if min_radius >= max_radius:
        raise DpError(f"--min-radius {min_radius:g}: must be below --max-radius ({max_radius:g})")
    require_inputs(inputs)
    dev.apply_threads()
    resolved = resolve_input(source)
    items = gather_items(inputs, exclude=[out.folder], recursive=source.recursive)
    runtime = dict(device=dev.device, precision=dev.precision, tile=dev.tile, tile_overlap=dev.tile_overlap)
    src = resolved.pipeline_source()
    estimator = None if method == "net" else get_method(method, min_radius=min_radius, max_radius=max_radius,
                                                        **runtime)
    if estimator is not None and not estimator.needs_pair:
        raise DpError(f"--method {method} deblurs single images; a defocus map needs a DP method")
    if method == "net":  # load (and check) the network once, before any file
        from dpcli.engine import load_session

        load_session(model, "coc", weights=weights, **runtime)

    def outputs(item) -> list[Path]:
        files = [out.folder / f"{item.name}_defocus.tiff", out.folder / f"{item.name}_defocus.png"]
        files += [out.folder / f"{item.name}_defocus.npy"] if npy else []
        files += [out.folder / f"{item.name}_confidence.png"] if confidence and method == "classical" else []
        return files

    recipe = {"command": "defocus-map", "method": method, "model": model if method == "net" else None,
              "weights": str(weights) if weights else None, "min_radius": min_radius, "max_radius": max_radius,
              "camera": source.camera, "srgb": resolved.source.srgb, "swap_lr": source.swap_lr,
              "black_level": resolved.source.black_level, "white_level": resolved.source.white_level}
    plan = OutputPlan(folder=out.folder, recipe=recipe, outputs=outputs, overwrite=out.overwrite)

    def process(item) -> ItemResult:
        with naming(item):
            return _one(item)

    def _one(item) -> ItemResult:
        import numpy as np

        from dpcli.io.images import write_image
        from dpcli.io.preview import write_defocus_outputs
        from dpcli.methods import coc_map
        from dpcli.pipeline import prepare_pair

        if isinstance(item, BadInput):
            raise item.error()
        if not is_pair(item):
            raise InputError("defocus-map needs a dual-pixel pair (NAME_L/NAME_R, left/ + right/, DPDD, DP RAW)",
                             item.paths[0])
        start = time.perf_counter()
        pair = prepare_pair(item, src)
        left, right, srgb = pair.left, pair.right, pair.srgb
        conf = None
        if method == "net":
            radius = coc_map(left, right, runtime, {}, weights=weights, model=model, srgb=srgb)
        elif method == "classical":
            radius, conf = estimator.defocus_with_confidence(left, right, srgb=srgb)
        else:
            radius = estimator.defocus_map(left, right, srgb=srgb, focus=src.focus_side)
        protected = {p.resolve() for p in item.paths}
        written = write_defocus_outputs(out.folder, item.name, radius, npy=npy, overwrite=True, protected=protected)
        if confidence and conf is not None:
            written.append(str(write_image(out.folder / f"{item.name}_confidence.png", np.asarray(conf)[None], 8,
                                           overwrite=True, protected=protected)))
        r = np.asarray(radius)
        return ItemResult(item.name, outputs=written, seconds=time.perf_counter() - start,
                          metrics={"r_min": float(r.min()), "r_median": float(np.median(r)), "r_max": float(r.max())},
                          details={"encoding": pair.provenance["encoding"], "orientation": pair.orientation.describe()})

    code = run_batch(items, process, lambda it: it.name, title=f"defocus maps ({method})", out=out, plan=plan,
                     metric_columns={"r_min": "smallest radius (px)", "r_median": "median radius (px)",
                                     "r_max": "largest radius (px)"},
                     detail_columns={"orientation": "L/R order"}, input_view=resolved.input_view,
                     notes=subfolder_note(inputs, [out.folder], source.recursive))
    raise typer.Exit(code)
