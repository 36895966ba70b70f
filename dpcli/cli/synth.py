"""`dpdeblur synth`: render synthetic dual-pixel scenes into a DPDD-layout folder."""
from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dpcli.cli.app import app
from dpcli.cli.console import console_err, describe_exception
from dpcli.cli.options import OutputOptions, bundle, parse_sets, renamed, with_bundles
from dpcli.cli.output_plan import check_folder_recipe
from dpcli.cli.result import ItemResult
from dpcli.errors import DpError, OutputError

EXAMPLES = """
Examples:

  # 8 DSLR-like scenes in seconds
  dpdeblur synth -o data/synth --count 8 --size 256

  # resumes: finished scenes are skipped
  dpdeblur synth -o data/synth --count 400 --workers 2

  dpdeblur synth -o data/pixel_like --count 1000 --synth-camera phone \\
      --native-blur --grey

  # blur with the measured Pixel 4 kernels
  dpdeblur synth -o data/pixel_measured --synth-camera phone --native-blur \\
      --grey --kernels ../shared/data/pixel4/calibration

  # natural photos (any folder; 'debian' = the photos of the Debian
  # wallpaper packages) and full-frame scenes with a pseudo-depth from the
  # photo's own segmentation
  dpdeblur synth -o data/photos --photos debian --photos ~/Pictures \\
      --synth-set fullframe_prob=0.4
"""


def _parse_size(value: str) -> tuple[int, int]:
    """"512" -> (512, 512); "768x512" -> (height 512, width 768)."""
    try:
        parts = [int(v) for v in value.lower().split("x")]
    except ValueError:
        raise DpError(f"--size {value}: expected N or WIDTHxHEIGHT, e.g. 512 or 768x512") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise DpError(f"--size {value}: expected N or WIDTHxHEIGHT with sides >= 16")
    return parts[1], parts[0]


def _parse_splits(value: str) -> tuple[float, float, float]:
    try:
        fr = tuple(float(v) for v in value.split(","))
    except ValueError:
        fr = ()
    if len(fr) != 3 or min(fr) < 0 or sum(fr) <= 0:
        raise DpError(f"--splits {value}: expected three fractions train,val,test, e.g. 0.8,0.1,0.1")
    return fr  # type: ignore[return-value]


def _one(root: str, seed: int, index: int, config: dict, fractions: tuple, overwrite: bool
         ) -> dict:
    """Render and write one scene (runs in a worker process)."""
    import torch

    from dpcli.synth.scene import SceneConfig, render_scene
    from dpcli.synth.writer import scene_done, scene_name, scene_split, write_scene

    torch.set_num_threads(1)
    name = scene_name(seed, index)
    split = scene_split(seed, index, fractions)
    start = time.perf_counter()
    if not overwrite and scene_done(Path(root), name, split):
        return asdict(ItemResult(name=name, status="skipped", message=split))
    try:
        scene = render_scene(seed, SceneConfig(**config), index)
        paths = write_scene(Path(root), scene, name, split, overwrite=True)
    except DpError as exc:
        return asdict(ItemResult(name=name, status="failed", message=exc.one_line()))
    except Exception as exc:  # one scene must not end the run
        return asdict(ItemResult(name=name, status="failed", message=describe_exception(exc)))
    return asdict(ItemResult(name=name, seconds=time.perf_counter() - start, message=split,
                             outputs=[str(p) for p in paths]))


@app.command("synth", epilog=EXAMPLES)
@with_bundles
def synth_command(
    count: int = typer.Option(100, "--count", "-n", min=1, help="Number of scenes (indices 0..N-1)."),
    size: str = typer.Option("512", "--size", help="Scene size: N (square) or WIDTHxHEIGHT."),
    seed: int = typer.Option(0, "--seed", help="Run seed: the same seed and index give the same scene."),
    synth_camera: str = typer.Option("dslr", "--synth-camera", help="Synthetic camera: dslr (DPDD-like) | "
                                     "phone (Pixel-like) | mixed."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Parallel worker processes."),
    file_format: str = typer.Option("auto", "--encoding",
                                    help="File encoding: auto (dslr: srgb16, phone: linear16) | srgb8 | srgb16 | "
                                         "linear16."),
    format_alias: Optional[str] = typer.Option(None, "--format", hidden=True),
    native_blur: bool = typer.Option(False, "--native-blur",
                                     help="Keep the camera's native-resolution radii (scenes are crops) "
                                          "instead of scaling radii with --size."),
    max_radius: Optional[float] = typer.Option(None, "--max-scene-radius", help="Largest blur radius rendered, "
                                               "px (default: the synthetic camera's range)."),
    max_radius_alias: Optional[float] = typer.Option(None, "--max-radius", hidden=True),
    focus: str = typer.Option("auto", "--focus", help="auto | front | middle | back."),
    noise: bool = typer.Option(True, "--noise/--no-noise", help="Poisson-Gaussian sensor noise."),
    vignetting: Optional[bool] = typer.Option(None, "--vignetting/--no-vignetting",
                                              help="DP vignetting on every scene / none (default: 30 %)."),
    edge_asymmetry: bool = typer.Option(False, "--edge-asymmetry", help="Radial kernel asymmetry near the frame edges."),
    grey: bool = typer.Option(False, "--grey", help="One channel (green plane), like Pixel 4 DP data."),
    kernels: Optional[Path] = typer.Option(None, "--kernels",
                                           help="Folder with measured blur_kernels_left.npy / _right.npy "
                                                "(Pixel 4 calibration format) to blur with instead of RDPD."),
    research_textures: bool = typer.Option(False, "--research-textures/--cc0-only", help="Also use the "
                                           "Middlebury motorcycle stereo photo (research use only; default: off)."),
    splits: str = typer.Option("0.8,0.1,0.1", "--splits", help="train,val,test fractions."),
    photos: Optional[list[str]] = typer.Option(None, "--photos",
                                               help="Folder (searched recursively) or file of natural photos "
                                                    "for textures, repeatable; 'debian' = the photographs of "
                                                    "the Debian wallpaper packages (docs/training.md)."),
    synth_set: Optional[list[str]] = typer.Option(None, "--synth-set",
                                                  help="Scene option KEY=VALUE (repeatable; the scene options "
                                                       "of docs/training.md), e.g. fullframe_prob=0.4."),
    set_alias: Optional[list[str]] = typer.Option(None, "--set", hidden=True),
    out_opts: OutputOptions = bundle(omit=("bit_depth", "format", "quality", "report"), required=("folder",),
                                     help={"folder": "Output folder (DPDD layout: train_c, train_l, train_r, "
                                           "val_*, test_*; created).",
                                           "overwrite": "Render scenes that exist again (default: skip them)."}),
) -> None:
    """Render synthetic dual-pixel scenes (left, right, combined, all-in-focus, signed defocus map).

    Deterministic per seed, resumable (finished scenes are skipped), parallel
    over scenes.
    """
    max_radius = renamed(max_radius, max_radius_alias, "--max-scene-radius", "--max-radius")
    set_ = renamed(synth_set, set_alias, "--synth-set", "--set")
    out, overwrite, quiet, json_summary = out_opts.folder, out_opts.overwrite, out_opts.quiet, out_opts.json
    if synth_camera not in ("dslr", "phone", "mixed"):
        raise DpError(f"--synth-camera {synth_camera}: expected dslr, phone or mixed")
    # --format is the file format (png | jpeg | tiff) in the commands that write photos: here it was the encoding
    file_format = renamed(file_format, format_alias, "--encoding", "--format", "auto")
    _check_choices(file_format, focus)
    height, width = _parse_size(size)
    if kernels is not None:
        from dpcli.optics import load_measured_kernels

        load_measured_kernels(kernels / "blur_kernels_left.npy", kernels / "blur_kernels_right.npy")
    fractions = _parse_splits(splits)
    extra = _scene_options(photos, set_)
    _make_folder(out)
    config = dict(height=height, width=width, camera=synth_camera, scale_radii=not native_blur,
                  max_radius=max_radius, focus_mode=None if focus == "auto" else focus, noise=noise,
                  vignetting=vignetting, edge_asymmetry=edge_asymmetry,
                  output=None if file_format == "auto" else file_format, allow_research=research_textures,
                  grey=grey, kernels=str(kernels) if kernels else None)
    config.update(extra)
    # scenes already there are kept only if they were made the same way (the seed and count may change)
    if check_folder_recipe(out, "synth", {"config": config, "splits": list(fractions)}, overwrite):
        _remove_scenes(out)  # --overwrite with other settings: no scene of the old ones stays mixed in
    results = _run(out, seed, count, config, fractions, overwrite, workers, quiet or json_summary)
    _summarise(out, results, json_summary)


def _check_choices(file_format: str, focus: str) -> None:
    """Refuse an encoding or focus that is not one of the choices."""
    if file_format not in ("auto", "srgb8", "srgb16", "linear16"):
        raise DpError(f"--encoding {file_format}: expected auto, srgb8, srgb16 or linear16")
    if focus not in ("auto", "front", "middle", "back"):
        raise DpError(f"--focus {focus}: expected auto, front, middle or back")


def _scene_options(photos: list[str] | None, synth_set: list[str] | None) -> dict:
    """Scene options of ``--photos`` and ``--synth-set KEY=VALUE`` (checked: a missing photo folder
    or an unknown option fails here, before any scene)."""
    from dpcli.synth.photos import list_photos
    from dpcli.synth.scene import scene_options

    extra = parse_sets(synth_set or [], "--synth-set")
    if photos:
        list_photos(tuple(photos))  # a missing folder fails here, before any scene
        extra["photos"] = list(photos)
    return scene_options(extra)


def _make_folder(out: Path) -> None:
    """Create the output folder (OutputError when a file is in the way or it cannot be made)."""
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror})", out) from None


def _summarise(out: Path, results: list[dict], json_summary: bool) -> None:
    """Counts per status and split (JSON on stdout, else one line on stderr), each failure in one
    line; exit code 1 when a scene failed."""
    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "skipped", "failed")}
    by_split = {s: sum(r["message"] == s for r in results if r["status"] != "failed") for s in ("train", "val", "test")}
    made = [r for r in results if r["status"] == "ok"]
    rate = 60 * len(made) / max(sum(r["seconds"] for r in made), 1e-9) if made else 0.0
    failed = [r for r in results if r["status"] == "failed"]
    if json_summary:
        print(json.dumps(dict(out=str(out), counts=counts, splits=by_split, items=results), indent=1))
    else:  # the final line, also with -q
        console_err.print(f"{out}: {counts['ok']} rendered, {counts['skipped']} already there, "
                          f"{counts['failed']} failed; train/val/test = {by_split['train']}/"
                          f"{by_split['val']}/{by_split['test']}; {rate:.1f} scenes/min per worker",
                          highlight=False)
    for r in failed:
        console_err.print(f"[red]error:[/red] {r['name']}: {r['message']}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _remove_scenes(root: Path) -> None:
    """Delete every scene a ``meta/NAME.json`` lists (its files, then the JSON itself)."""
    for meta in sorted(root.glob("*_c/meta/*.json")):
        try:
            files = json.loads(meta.read_text()).get("files", {})
        except (OSError, ValueError):
            files = {}
        for rel in files.values():
            (root / rel).unlink(missing_ok=True)
        meta.unlink(missing_ok=True)


def _run(out: Path, seed: int, count: int, config: dict, fractions: tuple, overwrite: bool,
         workers: int, quiet: bool) -> list[dict]:
    progress = Progress(TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[current]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console_err, disable=quiet)
    results: list[dict] = []
    with progress:
        task = progress.add_task("synth", total=count, current="")
        if workers == 1:
            for i in range(count):
                results.append(_one(str(out), seed, i, config, fractions, overwrite))
                progress.update(task, advance=1, current=results[-1]["name"])
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_one, str(out), seed, i, config, fractions, overwrite)
                           for i in range(count)]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    progress.update(task, advance=1, current=results[-1]["name"])
    return sorted(results, key=lambda r: r["name"])
