"""`dpdeblur run`: deblur DP pairs and single images in files and folders, by method name or by
the best method measured for the data's domain (dpcli.methods)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from dpcli.cli.app import FAMILIES, app
from dpcli.cli.batch import gather_items, naming, require_inputs, run_batch, subfolder_note
from dpcli.cli.console import console_err
from dpcli.cli.inputs import resolve_input
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, renamed, with_bundles
from dpcli.cli.output_plan import OutputPlan
from dpcli.cli.result import ItemResult
from dpcli.errors import DpError, InputError

_EPILOG = """
Examples:

  # DP pairs -> out/NAME.png, with the best method for the data
  dpdeblur run examples/pairs -o out/

  # two files of any name as one pair (repeatable) -> out/IMG_7.png
  dpdeblur run --pair a/IMG_7_left.png b/IMG_7.png -o out/

  # + NAME_defocus.tiff/.png from the same method
  dpdeblur run photos/ -o out/ --defocus-map

  # linear grey DP planes (e.g. preprocessed Pixel 4)
  dpdeblur run crops/ -o out/ --linear

  # raw planes: black and white level from the camera profile
  dpdeblur run pixel4/ -o out/ --camera pixel4

  # a method by name (dpdeblur models lists them)
  dpdeblur run pairs/ -o out/ --method classical

  # subfolders too: out/ mirrors the tree
  dpdeblur run photos/ -o out/ --recursive

  # JPEG outputs, EXIF and ICC profile kept
  dpdeblur run photos/ -o out/ --format jpeg --quality 90

  # the authors' checkpoint
  dpdeblur run dpdd/test -o out/ --method bambnet --weights BaMBNet.pth

  # Restormer, found from the file
  dpdeblur run photos/ -o out/ --weights dual_pixel_defocus_deblurring.pth

  # LaKDNet-L on single images
  dpdeblur run photos/ -o out/ --single --weights train_on_dpdd_l.pth
"""

@app.command("run", epilog=_EPILOG)
@with_bundles
def run_command(
    inputs: Optional[list[Path]] = typer.Argument(None, help="Files and folders: DP pairs (NAME_L/NAME_R, left/ "
                                                  "right/, DPDD, Dual Pixel RAW) and single images."),
    pair: Optional[list[Any]] = typer.Option(None, "--pair", metavar="LEFT RIGHT", help="Two files of any name as "
                                             "one DP pair (repeatable); the output is named after LEFT without "
                                             "its view suffix."),
    method: str = typer.Option("auto", "--method", "-m", help="auto (the best method measured for the data: "
                              "colour DP pairs -> the best measured, grey raw pairs -> "
                              "zeroshot today; single images -> shipped weights of their domain) | "
                              "zeroshot | classical | a weights name, or a network family with --weights "
                              "(dpdeblur models)."),
    model_alias: Optional[str] = typer.Option(None, "--model", hidden=True),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint: ours (.safetensors) or the "
                                           f"authors' DPDD .pth of a network family ({FAMILIES}); the family "
                                           "is read from the file. Or the name of shipped weights "
                                           "(dpdeblur models), as --method NAME."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of --weights when the file cannot tell "
                                       "(rarely needed: a checkpoint that fits both a family's deblurring and "
                                       "COC nets given to run is the deblurring net)."),
    single: bool = typer.Option(False, "--single", help="Treat DP pairs as single images (their combined view)."),
    defocus_map: bool = typer.Option(False, "--defocus-map", help="Also write NAME_defocus.tiff (signed blur "
                                     "radius, px) and NAME_defocus.png for DP pairs, from the method used "
                                     "(networks: a COC net, else the classical estimator)."),
    defocus_weights: Optional[Path] = typer.Option(None, "--defocus-weights", help="COC checkpoint for "
                                                   "--defocus-map with a network method (e.g. BaMBNet's COC net)."),
    kernels: Optional[Path] = typer.Option(None, "--kernels", help="Calibration folder with "
                                           "blur_kernels_{left,right}.npy (or its parent): measured kernels, "
                                           "put in our L/R order from their own shape like the views."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground truth (as dpdeblur eval takes it): the "
                                      "report scores each input and output against it (with --report)."),
    source: InputOptions = bundle(),
    out: OutputOptions = bundle(required=("folder",)),
    dev: DeviceOptions = bundle(),
) -> None:
    """Remove defocus blur: DP pairs and single images, each with the best method for its data.

    Writes OUT/NAME.png|.jpg|.tiff, all in focus, in the input's format, bit
    depth and metadata (--format picks another); a pair NAME_L/NAME_R gives NAME.
    With no --method, DP pairs go to the method measured best on real photos of
    their kind (colour sRGB or linear raw planes), single images to the shipped
    weights of theirs. Which view is left comes from --swap-lr, else the order
    the source knows (--camera, dpdeblur synth output), else the pair itself.
    The summary says per item which method ran and the L/R order.
    """
    from dpcli.io.pairs import BadInput, is_pair, photo_source
    from dpcli.pipeline import MethodChooser, Options, load_calibration

    model = renamed(method, model_alias, "--method", "--model", "auto")
    inputs, pair = inputs or [], [(Path(left), Path(right)) for left, right in pair or []]
    require_inputs(inputs, pair)
    if gt is not None and not out.report:
        raise DpError("--gt scores the inputs and outputs in the report: add --report")
    if gt is not None and not gt.exists():
        raise InputError("--gt: no such folder", gt)
    dev.apply_threads()
    resolved = resolve_input(source)
    items = gather_items(inputs, exclude=[out.folder], recursive=source.recursive, pairs=pair)
    if weights is not None and model == "auto":
        usable = [it for it in items if not isinstance(it, BadInput)]
        kinds = {is_pair(it) and not single for it in usable}
        if len(kinds) > 1:
            from dpcli.models.registry import deblur_families

            raise DpError("--weights with both DP pairs and single images: say which network they are for with "
                          f"--method {'|'.join(deblur_families())} (or run pairs and single images separately)")
    runtime = dict(device=dev.device, precision=dev.precision, tile=dev.tile, tile_overlap=dev.tile_overlap,
                   coc_weights=defocus_weights)
    runtime["tta"] = dev.tta  # --tta: test-time augmentation of networks (dpcli.methods.tta)
    options = Options(model, weights, arch, single=single, defocus=defocus_map,
                      kernels=load_calibration(kernels or resolved.kernels, resolved.focus), runtime=runtime)
    chooser = MethodChooser.of(options)
    if chooser.named:  # a bad name or checkpoint fails once, before any file
        chooser.for_item("dslr", not single and any(is_pair(it) for it in items if not isinstance(it, BadInput)))
    src = resolved.pipeline_source()

    def outputs(item) -> list[Path]:
        files = [out.photo_path(item.name, None if isinstance(item, BadInput) else photo_source(item))]
        if defocus_map and is_pair(item) and not single:
            files += [out.folder / f"{item.name}_defocus.tiff", out.folder / f"{item.name}_defocus.png"]
        return files

    recipe = {"command": "run", **chooser.recipe(), "single": single, "defocus_map": defocus_map,
              "defocus_weights": str(defocus_weights) if defocus_weights else None,
              "kernels": str(kernels or resolved.kernels or "") or None, "camera": source.camera,
              "srgb": resolved.source.srgb, "swap_lr": source.swap_lr, "black_level": resolved.source.black_level,
              "white_level": resolved.source.white_level, "bit_depth": out.bit_depth, "tile": dev.tile,
              "precision": dev.precision, "format": out.format, "quality": out.quality, "tta": dev.tta}
    plan = OutputPlan(folder=out.folder, recipe=recipe, outputs=outputs, overwrite=out.overwrite)

    def process(item) -> ItemResult:
        with naming(item):
            return _process(item, src, options, chooser, out)

    code = run_batch(items, process, lambda it: it.name, title="deblurring", out=out, plan=plan,
                     detail_columns={"method": "method", "orientation": "L/R order"}, ground_truth=gt,
                     input_view=resolved.input_view,
                     notes=subfolder_note(inputs, [out.folder], source.recursive))
    raise typer.Exit(code)


def _process(item, source, options, chooser, out: OutputOptions) -> ItemResult:
    """One item through :func:`dpcli.pipeline.process`, its outputs written."""
    from dpcli.io.pairs import is_pair, photo_source
    from dpcli.io.preview import write_defocus_outputs
    from dpcli.pipeline import process
    from dpcli.timing import stage

    start = time.perf_counter()
    done = process(item, source, options, chooser)
    for warning in done.warnings:
        console_err.print(f"[yellow]warning:[/yellow] {item.name}: {warning}", highlight=False, soft_wrap=True)
    protected = {p.resolve() for p in item.paths}
    with stage("encode + write"):
        written = [str(out.write_photo(item.name, done.image, done.bit_depth,  # clipped by process
                                       source=photo_source(item), stored=is_pair(item), protected=protected))]
    if options.defocus and done.defocus is not None:
        written += write_defocus_outputs(out.folder, item.name, done.defocus, overwrite=True, protected=protected)
    details = {"encoding": done.provenance["encoding"], "domain": done.provenance["domain"]}
    if done.orientation is not None:
        details["orientation"] = done.orientation.describe()
    details["method"] = done.method.name
    if done.notes:
        details["note"] = "; ".join(done.notes)
    return ItemResult(item.name, outputs=written, seconds=time.perf_counter() - start, details=details)
