"""`dpdeblur run`: deblur DP pairs and single images in files and folders, by method name or by
the best method measured for the data's domain (dpcli.methods)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from dpcli.cli.app import app
from dpcli.cli.cameras import ResolvedInput, looks_like_raw_counts, resolve_input
from dpcli.cli.common import ItemResult, OutputPlan, console_err, require_inputs, run_batch
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, with_bundles
from dpcli.errors import DpError, InputError

_EPILOG = """
Examples:

  dpdeblur run examples/pairs -o out/                   # DP pairs -> out/NAME.png, best method for the data

  dpdeblur run photos/ -o out/ --defocus-map            # + NAME_defocus.tiff/.png from the same method

  dpdeblur run crops/ -o out/ --linear                  # linear grey DP planes (e.g. preprocessed Pixel 4)

  dpdeblur run pixel4/ -o out/ --camera pixel4          # raw planes: black/white level from the profile

  dpdeblur run pairs/ -o out/ --model classical         # a method by name (dpdeblur models)

  dpdeblur run dpdd/test -o out/ --model bambnet --weights BaMBNet.pth   # the authors' checkpoint

  dpdeblur run photos/ -o out/ --weights dual_pixel_defocus_deblurring.pth   # Restormer, found from the file

  dpdeblur run photos/ -o out/ --single --weights train_on_dpdd_l.pth        # LaKDNet-L on single images
"""

_DOMAIN_WORDS = {"phone": "linear grey (phone raw) images", "dslr": "colour sRGB photos"}


@dataclass
class _Chooser:
    """Which method runs on an item: the one named by --model, else the best measured for its domain."""

    model: str
    weights: Optional[Path]
    arch: Optional[str]
    runtime: dict
    chosen: dict = field(default_factory=dict)

    def for_item(self, domain: str, pair: bool):
        from dpcli.methods import default_method, get_method

        key = ("named" if self.model != "auto" or self.weights is not None else domain, pair)
        if key in self.chosen:
            return self.chosen[key]
        if self.model == "auto" and self.weights is None:
            method = default_method(domain, pair, self._candidates())
            if method is None:
                what = "DP pairs" if pair else "single images"
                raise InputError(f"no method for {what} of {_DOMAIN_WORDS[domain]} is shipped yet"
                                 + ("" if pair else " (DP pairs deblur out of the box)"))
            method = get_method(method.name, **self.runtime)
        else:
            name = self.model  # "auto" with --weights: the family the file's keys say
            method = get_method(name, weights=self.weights, arch=self.arch, **self.runtime)
        self.chosen[key] = method
        return method

    def _candidates(self):
        from dpcli.methods import list_methods

        if "_all" not in self.chosen:
            self.chosen["_all"] = list_methods()
        return self.chosen["_all"]

    def recipe(self) -> dict:
        """What decides the pixels: the named method and weights, or the defaults per domain."""
        from dpcli.methods import default_method

        if self.model != "auto" or self.weights is not None:
            weights = None
            if self.weights is not None:
                from dpcli.models.registry import sha256_file

                weights = sha256_file(self.weights)
            return {"model": self.model, "weights": weights, "arch": self.arch}
        table = {}
        for domain in _DOMAIN_WORDS:
            for pair in (True, False):
                m = default_method(domain, pair, self._candidates())
                table[f"{domain}/{'pair' if pair else 'single'}"] = m.name if m else None
        return {"model": "auto", "defaults": table}


@app.command("run", epilog=_EPILOG)
@with_bundles
def run_command(
    inputs: list[Path] = typer.Argument(..., help="Files and folders: DP pairs (NAME_L/NAME_R, left/ right/, "
                                        "DPDD, Dual Pixel RAW) and single images."),
    model: str = typer.Option("auto", "--model", "-m", help="auto (the best method measured for the data: "
                              "colour DP pairs -> bambnet_deblur_small.dslr-synth, grey raw pairs -> "
                              "zeroshot today; single images -> shipped weights of their domain) | "
                              "zeroshot | classical | a weights name, or a network family with --weights "
                              "(dpdeblur models)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint: ours (.safetensors) or the "
                                           "authors' DPDD .pth of BaMBNet (the deblurring net), DefocusGAN, "
                                           "Restormer or LaKDNet; the family is read from the file."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of --weights when the file cannot tell "
                                       "(rarely needed: BaMBNet checkpoints given to run are the deblurring net)."),
    single: bool = typer.Option(False, "--single", help="Treat DP pairs as single images (their combined view)."),
    defocus_map: bool = typer.Option(False, "--defocus-map", help="Also write NAME_defocus.tiff (signed blur "
                                     "radius, px) and NAME_defocus.png for DP pairs, from the method used "
                                     "(networks: a COC net, else the classical estimator)."),
    defocus_weights: Optional[Path] = typer.Option(None, "--defocus-weights", help="COC checkpoint for "
                                                   "--defocus-map with a network method (e.g. BaMBNet's COC net)."),
    kernels: Optional[Path] = typer.Option(None, "--kernels", help="Calibration folder with "
                                           "blur_kernels_{left,right}.npy (or its parent): measured kernels, "
                                           "put in our L/R order from their own shape like the views."),
    source: InputOptions = bundle(),
    out: OutputOptions = bundle(required=("folder",)),
    dev: DeviceOptions = bundle(),
) -> None:
    """Remove defocus blur: DP pairs and single images, each with the best method for its data.

    Writes OUT/NAME.png (all-in-focus, at the input's bit depth); a pair NAME_L/NAME_R gives
    NAME. With no --model, DP pairs go to the method measured best on real photos of their domain
    (colour sRGB or linear raw planes) and single images to shipped weights of theirs; which view
    is left is read from each pair. The summary says per item which method ran and the L/R order.
    """
    from dpcli.io.pairs import BadInput, discover_inputs, is_pair, probe_items

    require_inputs(inputs)
    dev.apply_threads()
    resolved = resolve_input(source)
    items = probe_items(discover_inputs(inputs, exclude=[out.folder]))
    if not items:
        raise InputError("no images found", inputs[0])
    if all(isinstance(it, BadInput) for it in items):
        raise items[0].error()
    if weights is not None and model == "auto":
        usable = [it for it in items if not isinstance(it, BadInput)]
        kinds = {is_pair(it) and not single for it in usable}
        if len(kinds) > 1:
            raise DpError("--weights with both DP pairs and single images: say which network they are for with "
                          "--model bambnet|defocusgan (or run pairs and single images separately)")
    runtime = dict(device=dev.device, precision=dev.precision, tile=dev.tile, tile_overlap=dev.tile_overlap,
                   coc_weights=defocus_weights)
    chooser = _Chooser(model, weights, arch, runtime)
    if model != "auto" or weights is not None:  # a bad name or checkpoint fails once, before any file
        chooser.for_item("dslr", not single and any(is_pair(it) for it in items if not isinstance(it, BadInput)))
    calibration = load_calibration(kernels or resolved.kernels, resolved.focus)
    ext = out.extension

    def outputs(item) -> list[Path]:
        files = [out.folder / f"{item.name}{ext}"]
        if defocus_map and is_pair(item) and not single:
            files += [out.folder / f"{item.name}_defocus.tiff", out.folder / f"{item.name}_defocus.png"]
        return files

    recipe = {"command": "run", **chooser.recipe(), "single": single, "defocus_map": defocus_map,
              "defocus_weights": str(defocus_weights) if defocus_weights else None,
              "kernels": str(kernels or resolved.kernels or "") or None, "camera": source.camera,
              "srgb": resolved.source.srgb, "swap_lr": source.swap_lr, "black_level": resolved.source.black_level,
              "white_level": resolved.source.white_level, "bit_depth": out.bit_depth, "tile": dev.tile,
              "precision": dev.precision}
    plan = OutputPlan(folder=out.folder, recipe=recipe, outputs=outputs, overwrite=out.overwrite)

    def process(item) -> ItemResult:
        with naming(item):
            return _process(item, chooser, resolved, out, single=single, defocus_map=defocus_map,
                            calibration=calibration)

    code = run_batch(items, process, lambda it: it.name, title="deblurring", out=out, plan=plan,
                     detail_columns={"method": "method", "orientation": "L/R order"})
    raise typer.Exit(code)


@contextmanager
def naming(item):
    """An input error raised without a file (e.g. a method's size limit) names the item's file."""
    try:
        yield
    except InputError as exc:
        if exc.path is None and getattr(item, "paths", None):
            raise InputError(exc.message, item.paths[0]) from None
        raise


def load_calibration(path: Optional[Path], focus: str = "front"):
    """Measured kernels of a calibration folder (``blur_kernels_{left,right}.npy`` in it or in its
    ``calibration/`` subfolder), re-centred, in OUR orientation read from their own centroids
    (:func:`dpcli.optics.orientation.orient_kernels`), so they fit the views whichever way either
    was named: one reader for run and zeroshot. None when no folder is given."""
    if path is None:
        return None
    from dpcli.classical import load_kernels_dir
    from dpcli.optics.orientation import orient_kernels

    kl, kr = load_kernels_dir(path)
    kl, kr, _ = orient_kernels(kl.numpy(), kr.numpy(), "back" if focus == "back" else "front")
    return kl, kr


def _process(item, chooser: _Chooser, resolved: ResolvedInput, out: OutputOptions, *, single: bool,
             defocus_map: bool, calibration) -> ItemResult:
    from dpcli.io.images import write_image
    from dpcli.io.pairs import BadInput, RawDPInput, is_pair, load_pair, load_single
    from dpcli.io.preview import write_defocus_outputs
    from dpcli.methods import orient
    from dpcli.optics.orientation import orient_views

    if isinstance(item, BadInput):
        raise item.error()
    start = time.perf_counter()
    as_pair = is_pair(item) and not single
    raw = resolved.raw_options()
    details: dict[str, str] = {}
    notes: list[str] = []
    if as_pair:
        pair = load_pair(item, raw=raw, with_target=False)
        left, right, depth = pair.left, pair.right, pair.bit_depth
        srgb = resolved.encoding(left.shape[0], depth, raw_dp=isinstance(item, RawDPInput))
        domain = resolved.domain(left.shape[0], srgb)
        method = chooser.for_item(domain, True)
        if not method.needs_pair:
            raise InputError(f"--model {method.name} deblurs single images; add --single to run it on the "
                             "pairs' combined views")
        if resolved.source.black_level is not None and resolved.source.white_sheet is None:
            notes.append("raw planes without vignetting correction (--white-sheet LEFT RIGHT)")
        if resolved.source.black_level is None and looks_like_raw_counts(left, depth):
            notes.append("the values look like raw counts above a black level: --camera pixel4 or --black-level")
        orientation = orient(left, right, srgb=srgb, focus=resolved.focus, user=resolved.source.swap_lr,
                             hint=resolved.swap_hint)
        left, right, _ = orient_views(left, right, orientation)
        kern = calibration  # already in our orientation (load_calibration)
        details["orientation"] = orientation.describe()
        result = method.deblur(left, right, srgb=srgb, kernels=kern, defocus=defocus_map, focus=resolved.focus)
    else:
        image, _, depth = load_single(item, raw=raw, with_target=False)
        srgb = resolved.encoding(image.shape[0], depth)
        domain = resolved.domain(image.shape[0], srgb)
        method = chooser.for_item(domain, False)
        if method.needs_pair:
            raise InputError(f"a single image; --model {method.name} needs dual-pixel pairs "
                             "(NAME_L/NAME_R, left/ + right/, DPDD or Dual Pixel RAW)", item.paths[0])
        result = method.deblur(image, None, srgb=srgb)
    details["method"] = method.name
    if domain not in method.domains:
        notes.append(f"{method.name} is meant for {' and '.join(_DOMAIN_WORDS[d] for d in method.domains)}, "
                     f"not {_DOMAIN_WORDS[domain]}")
        console_err.print(f"[yellow]warning:[/yellow] {item.name}: {notes[-1]}", highlight=False, soft_wrap=True)
    for key in (("defocus_source", "note") if defocus_map else ("note",)):
        if result.info.get(key):
            notes.append(f"{key.replace('_', ' ')}: {result.info[key]}")
    protected = {p.resolve() for p in item.paths}
    written = [str(write_image(out.folder / f"{item.name}{out.extension}", np.clip(result.image, 0, 1),
                               out.depth(depth), overwrite=True, protected=protected))]
    if defocus_map and as_pair and result.defocus is not None:
        written += write_defocus_outputs(out.folder, item.name, result.defocus, overwrite=True, protected=protected)
    if notes:
        details["note"] = "; ".join(notes)
    return ItemResult(item.name, outputs=written, seconds=time.perf_counter() - start, details=details)

