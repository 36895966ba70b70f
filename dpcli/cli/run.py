"""`dpdeblur run`: deblur DP pairs (BaMBNet) and single images (DefocusGAN) in files and folders."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from dpcli.cli.app import app
from dpcli.cli.common import (
    BIT_DEPTH_OPTION,
    BLACK_LEVEL_OPTION,
    DEVICE_OPTION,
    JSON_OPTION,
    OVERWRITE_OPTION,
    PRECISION_OPTION,
    QUIET_OPTION,
    RAW_OUTPUT_OPTION,
    SWAP_LR_OPTION,
    THREADS_OPTION,
    TILE_OPTION,
    TILE_OVERLAP_OPTION,
    VERBOSE_OPTION,
    WHITE_LEVEL_OPTION,
    WHITE_SHEET_LEFT_OPTION,
    WHITE_SHEET_RIGHT_OPTION,
    ItemResult,
    parse_bit_depth,
    raw_options,
    require_inputs,
    run_batch,
)
from dpcli.errors import DpError, InputError

_EPILOG = """
Examples:

  dpdeblur run scene_L.png scene_R.png -o out/          # a DP pair -> out/scene.png (BaMBNet)

  dpdeblur run photos/ -o out/ --defocus-map            # pairs and single images, + COC maps

  dpdeblur run dpdd/test -o out/ --model bambnet --weights BaMBNet.pth --arch bambnet_deblur

  dpdeblur run img.jpg -o out/ --model defocusgan --precision bf16 --tile 512

  dpdeblur run pixel4/ -o out/ --model classical --black-level 1024 --swap-lr
"""


@dataclass
class _Plan:
    """What runs on what: sessions are loaded once, before the first file."""

    pair_session: Any = None  # Deblurrer for pairs, or "classical"
    single_session: Any = None  # Deblurrer for single images
    coc_session: Any = None  # Deblurrer estimating COC, or "classical"
    kernels: Any = None  # measured (left, right) kernels for --model classical


def _session(model: str, task: str, weights, arch, opts: dict) -> Any:
    if model == "classical":
        if task == "deblur_single":
            raise DpError("--model classical needs DP pairs (it deconvolves both views jointly); "
                          "single images need --model defocusgan")
        return "classical"
    from dpcli.api import load_session

    return load_session(model, task, weights=weights, arch=arch, **opts)


def _make_plan(items: list, single: bool, model: str, weights: Optional[Path], arch: Optional[str],
               defocus_map: bool, defocus_model: str, defocus_weights: Optional[Path], opts: dict) -> _Plan:
    from dpcli.io.pairs import BadInput, is_pair

    usable = [it for it in items if not isinstance(it, BadInput)]
    has_pairs = any(is_pair(it) for it in usable) and not single
    has_singles = any(not is_pair(it) for it in usable) or (single and bool(usable))
    plan = _Plan()
    if model == "auto" and weights is not None and has_pairs and has_singles:
        raise DpError("--weights with both DP pairs and single images: say which network they are for with "
                      "--model bambnet|defocusgan (or run pairs and single images separately)")
    if has_pairs and model not in ("auto", "classical", "bambnet"):
        from dpcli.models.loading import resolve_arch

        if resolve_arch(model, "deblur_pair")[0] == "defocusgan":
            raise DpError(f"--model {model} is a single-image network; add --single to run it on the pairs' "
                          "combined views, or use --model bambnet for the pairs")
    if has_pairs:
        plan.pair_session = _session("bambnet" if model == "auto" else model, "deblur_pair", weights, arch, opts)
    if has_singles:
        plan.single_session = _session("defocusgan" if model == "auto" else model, "deblur_single",
                                       weights, arch, opts)
    if defocus_map and has_pairs:
        plan.coc_session = _session(defocus_model, "coc", defocus_weights, None, opts)
    return plan


def _classical_deblur(left: np.ndarray, right: np.ndarray, srgb: bool, kernels) -> np.ndarray:
    """The classical helper's joint L/R deconvolution (dpcli.classical), parametric or measured kernels."""
    from dpcli.classical import deblur_pair_classical

    return deblur_pair_classical(left, right, kernels, srgb=srgb)


@app.command("run", epilog=_EPILOG)
def run_command(
    inputs: list[Path] = typer.Argument(..., help="Files and folders: DP pairs (NAME_L/NAME_R, left/ right/, "
                                        "DPDD, Dual Pixel RAW) and single images."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
    model: str = typer.Option("auto", "--model", "-m", help="auto (pairs: bambnet, single images: defocusgan) | "
                              "bambnet | defocusgan | classical | an architecture or arch.tag (dpdeblur models)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint: our .safetensors or the authors' "
                                           "DPDD .pth/.pt (loaded with torch.load(weights_only=True))."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of --weights when the file cannot tell "
                                       "(BaMBNet's deblur and COC nets share their keys): e.g. bambnet_deblur."),
    single: bool = typer.Option(False, "--single", help="Treat DP pairs as single images (their combined view)."),
    defocus_map: bool = typer.Option(False, "--defocus-map", help="Also write NAME_defocus.tiff (signed blur "
                                     "radius, px) and NAME_defocus.png (preview) for DP pairs."),
    defocus_model: str = typer.Option("bambnet", "--defocus-model", help="COC network for --defocus-map: "
                                      "bambnet | defocusgan | classical | an architecture."),
    defocus_weights: Optional[Path] = typer.Option(None, "--defocus-weights", help="Checkpoint for --defocus-model."),
    kernels: Optional[Path] = typer.Option(None, "--kernels", help="--model classical: folder with measured "
                                           "blur_kernels_{left,right}.npy (Pixel 4 calibration) instead of "
                                           "parametric kernels."),
    bit_depth: str = BIT_DEPTH_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    tile: Optional[int] = TILE_OPTION,
    tile_overlap: Optional[int] = TILE_OVERLAP_OPTION,
    device: str = DEVICE_OPTION,
    precision: str = PRECISION_OPTION,
    threads: int = THREADS_OPTION,
    swap_lr: bool = SWAP_LR_OPTION,
    black_level: Optional[float] = BLACK_LEVEL_OPTION,
    white_level: Optional[float] = WHITE_LEVEL_OPTION,
    white_sheet_left: Optional[Path] = WHITE_SHEET_LEFT_OPTION,
    white_sheet_right: Optional[Path] = WHITE_SHEET_RIGHT_OPTION,
    raw_output: str = RAW_OUTPUT_OPTION,
    json_summary: bool = JSON_OPTION,
    quiet: bool = QUIET_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Remove defocus blur: DP pairs through BaMBNet, single images through DefocusGAN.

    Writes OUT/NAME.png (the all-in-focus image, at the input's bit depth); a pair NAME_L/NAME_R
    gives NAME. Existing outputs are skipped (resume) unless --overwrite. Without trained
    weights registered (dpdeblur models), pass a checkpoint with --weights.
    """
    from dpcli.device import set_threads
    from dpcli.io.pairs import discover_inputs, input_paths

    require_inputs(inputs)
    parse_bit_depth(bit_depth, 16)  # validate early
    set_threads(threads)
    raw = raw_options(black_level, white_level, white_sheet_left, white_sheet_right, raw_output)
    items = discover_inputs(inputs, exclude=[output])
    if not items:
        raise InputError("no images found", inputs[0])
    opts = dict(device=device, precision=precision, tile=tile, tile_overlap=tile_overlap)
    plan = _make_plan(items, single, model, weights, arch, defocus_map, defocus_model, defocus_weights, opts)
    if kernels is not None:
        if model != "classical":
            raise DpError("--kernels goes with --model classical")
        from dpcli.classical import load_kernels_dir

        plan.kernels = load_kernels_dir(kernels, swap_lr=swap_lr)
    output.mkdir(parents=True, exist_ok=True)
    protected = input_paths(items)

    def process(item) -> ItemResult:
        return _process(item, plan, output, single=single, bit_depth=bit_depth, overwrite=overwrite,
                        swap_lr=swap_lr, raw=raw, defocus_map=defocus_map, protected=protected)

    code = run_batch(items, process, lambda it: it.name, title="deblurring", quiet=quiet, verbose=verbose,
                     json_summary=json_summary)
    raise typer.Exit(code)


def _is_srgb(raw) -> bool:
    """Views read from ordinary image files (and rendered DP RAW) are sRGB-encoded; raw planes are linear."""
    return raw.black_level is None and raw.output == "srgb"


def _process(item, plan: _Plan, out_dir: Path, *, single: bool, bit_depth: str, overwrite: bool,
             swap_lr: bool, raw, defocus_map: bool, protected: set) -> ItemResult:
    from dpcli.io.images import write_image
    from dpcli.io.pairs import BadInput, is_pair, load_pair, load_single

    if isinstance(item, BadInput):
        raise item.error()
    as_pair = is_pair(item) and not single
    start = time.perf_counter()
    wants_map = defocus_map and as_pair
    # output names: NAME.png (.tiff for float output)
    ext = ".tiff" if bit_depth in ("32f", "32") else ".png"
    target = out_dir / f"{item.name}{ext}"
    expected = [target] + ([out_dir / f"{item.name}_defocus.tiff"] if wants_map else [])
    if not overwrite and all(p.exists() for p in expected):
        return ItemResult(item.name, status="skipped", outputs=[str(p) for p in expected],
                          message="outputs exist (--overwrite to redo)")
    if as_pair:
        pair = load_pair(item, swap_lr=swap_lr, raw=raw, with_target=False)
        left, right, depth = pair.left, pair.right, pair.bit_depth
        if plan.pair_session == "classical":
            aif = _classical_deblur(left, right, _is_srgb(raw), plan.kernels)
        else:
            aif = plan.pair_session.deblur_pair(left, right)
    else:
        image, _, depth = load_single(item, raw=raw, with_target=False)
        aif = plan.single_session.deblur_image(image)
    outputs = [str(write_image(target, np.clip(aif, 0, 1), parse_bit_depth(bit_depth, depth),
                               overwrite=overwrite, protected=protected))]
    if wants_map:
        if plan.coc_session == "classical":
            from dpcli.classical.defocus import estimate_defocus_classical

            radius, _ = estimate_defocus_classical(left, right, srgb=_is_srgb(raw))
        else:
            radius = plan.coc_session.estimate_coc(left, right)[0]
        from dpcli.io.preview import write_defocus_outputs

        outputs += write_defocus_outputs(out_dir, item.name, radius, overwrite=overwrite, protected=protected)
    return ItemResult(item.name, outputs=outputs, seconds=time.perf_counter() - start)
