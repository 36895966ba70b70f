"""`dpdeblur train`: train BaMBNet or DefocusGAN stages on DPDD-layout folders or synthetic scenes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dpcli.cli.app import app
from dpcli.cli.common import console_err
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, with_bundles
from dpcli.errors import DpError

_EXAMPLES = """
[bold]Examples[/bold]

  # under a minute: the tiny test network on synthetic scenes (checks the setup)
  dpdeblur train bambnet --data synth --config test --steps 5 -o runs/try

  # BaMBNet on on-the-fly synthetic DP scenes, CPU-sized network, 2 hours at most
  dpdeblur train bambnet --data synth --config small -o runs/bamb --time-budget 7200

  # reproduce the paper on DPDD (both stages; 512 px patches, 60% overlap, 30% least sharp dropped)
  dpdeblur train bambnet --stage coc --data DPDD --config paper -o runs/coc
  dpdeblur train bambnet --stage deblur --data DPDD --config paper -o runs/deblur \\
      --coc-weights runs/coc/checkpoint.pt

  # DefocusGAN: defocus-map net, then the generator guided by its maps
  dpdeblur train defocusgan --stage defocus --data DPDD --config paper -o runs/dm
  dpdeblur train defocusgan --stage generator --data DPDD --config paper -o runs/gan \\
      --defocus-weights runs/dm/checkpoint.pt

  # continue after Ctrl-C or a time budget; export fp16 weights into weights/ + manifest
  dpdeblur train bambnet --data synth -o runs/bamb --resume --export synth-v1

  # DSLR colour data from natural photos (any folder; 'debian' = the Debian wallpaper photos)
  dpdeblur train defocusgan --data synth --synth-camera dslr --photos debian \\
      --synth-set fullframe_prob=0.4 -o runs/gen_dslr

  # several GPUs / nodes
  torchrun --nproc_per_node 4 -m dpcli train bambnet --data DPDD --config paper --device cuda
"""


def _parse_sets(items: list[str]) -> dict:
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DpError(f"--set {item}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@app.command("train", epilog=_EXAMPLES)
@with_bundles
def train_command(
    model: str = typer.Argument(..., help="bambnet | defocusgan"),
    data: str = typer.Option("synth", "--data", help="DPDD-layout folder (real DPDD or `dpdeblur synth` "
                             "output, NAME_defocus.tiff maps used when present) or 'synth' (on-the-fly scenes)."),
    stage: Optional[str] = typer.Option(None, "--stage", help="bambnet: coc | deblur (default); "
                                        "defocusgan: defocus | generator (default)."),
    config: str = typer.Option("small", "--config", help="test (seconds) | small (CPU) | paper (the papers' recipe)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps (default: the config's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch per process."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Training crop in px (synthetic: scene size)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: the config's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the -o folder from its "
                                "checkpoint.pt, exactly."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop (with a checkpoint) after this many seconds."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, data order, crops and flips."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Validation PSNR every N steps (0 = never)."),
    ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every", help="Checkpoint every N steps."),
    val_count: int = typer.Option(8, "--val-count", help="Fixed validation samples (also Algorithm 1's split)."),
    patch_recipe: Optional[bool] = typer.Option(None, "--patch-recipe/--no-patch-recipe",
                                                help="DPDD patches: 512 px, 60% overlap, drop 30% least sharp."),
    coc_weights: Optional[Path] = typer.Option(None, "--coc-weights", help="BaMBNet deblur: trained COC net "
                                               "(checkpoint.pt or .safetensors) for the defocus masks."),
    coc_source: str = typer.Option("auto", "--coc-source", help="BaMBNet deblur masks from: net | gt | auto."),
    defocus_weights: Optional[Path] = typer.Option(None, "--defocus-weights",
                                                   help="DefocusGAN generator: trained defocus-map net."),
    r_max: Optional[float] = typer.Option(None, "--r-max", help="Largest COC radius in px (paper 25)."),
    synth_length: int = typer.Option(512, "--synth-length", help="Synthetic scenes per epoch."),
    synth_camera: str = typer.Option("phone", "--synth-camera", help="Synthetic camera: phone (Pixel-like "
                                     "radii, linear) | dslr (DPDD-like, sRGB) | mixed."),
    synth_grey: bool = typer.Option(False, "--synth-grey", help="Grey synthetic scenes replicated to RGB "
                                    "(like Pixel 4's single green DP plane)."),
    photos: Optional[list[str]] = typer.Option(None, "--photos", help="Synthetic scenes: folder (recursive) or "
                                               "file of natural photos for textures, repeatable; 'debian' = "
                                               "the Debian wallpaper photos (docs/training.md)."),
    synth_set: Optional[list[str]] = typer.Option(None, "--synth-set", help="Synthetic scene option KEY=VALUE "
                                                  "(repeatable; a SceneConfig field of dpcli.synth), e.g. "
                                                  "fullframe_prob=0.4."),
    warm_start: Optional[Path] = typer.Option(None, "--warm-start", help="Initialise from a compact state "
                                              "(weights/checkpoints/*.pt): weights + thresholds, fresh optimiser."),
    export: Optional[str] = typer.Option(None, "--export", help="After training write weights/ARCH.NAME.safetensors "
                                         "(fp16) and its manifest entry."),
    save_state: Optional[Path] = typer.Option(None, "--save-state", help="Also write the compact fp16 state here."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Stage option KEY=VALUE (repeatable), e.g. "
                                             "search_every=300 anneal_steps=900 lam=0.02."),
    source: InputOptions = bundle(omit=("black_level", "white_level", "white_sheet", "swap_lr", "camera"),
                                  help={"srgb": "The --data folder holds sRGB / linear values (default: the "
                                        "folder says; dpdeblur synth records it, DPDD is sRGB)."}),
    out: OutputOptions = bundle(omit=("bit_depth",), defaults={"folder": Path("runs/train")},
                                help={"folder": "Run folder: checkpoint.pt, train.log, metrics.jsonl, run.json. "
                                      "One that holds a run continues only with --resume.",
                                      "overwrite": "Start over in a run folder that holds a run (its run "
                                      "files are removed).",
                                      "json": "Print the run's summary as JSON on stdout."}),
    dev: DeviceOptions = bundle(omit=("tile", "tile_overlap")),
) -> None:
    """Train a network (one stage of BaMBNet or DefocusGAN) with checkpoints, resume and validation."""
    from dpcli.train.runner import TrainRequest, run_training

    dev.apply_threads()
    if coc_source not in ("auto", "net", "gt"):
        raise DpError(f"--coc-source {coc_source}: expected auto, net or gt")
    if dev.precision == "fp16":  # fp16 gradients underflow without a GradScaler, which the stages do not use
        raise DpError("--precision fp16 is not supported for training; use bf16 or fp32")
    run_dir = out.folder or Path("runs/train")
    synth_options: dict = {"camera": synth_camera, "grey": synth_grey}
    if photos or synth_set:
        from dpcli.synth.photos import list_photos
        from dpcli.synth.scene import scene_options

        extra = _parse_sets(synth_set or [])
        if photos:
            list_photos(tuple(photos))  # a missing folder fails here, before any training
            extra["photos"] = list(photos)
        synth_options.update(scene_options(extra))
    from dpcli.train.stages import get_stage

    flags = dict(coc_weights=coc_weights, coc_source=coc_source, defocus_weights=defocus_weights, r_max=r_max)
    options: dict = dict(get_stage(model, stage).flags(flags))  # the flags this stage takes
    options.update(_parse_sets(set_ or []))
    req = TrainRequest(model=model, data=data, stage=stage, config=config, out=run_dir, steps=steps,
                       batch_size=batch_size, crop=crop, lr=lr, seed=seed, resume=resume, time_budget=time_budget,
                       precision=dev.precision, device=dev.device, val_every=val_every, ckpt_every=ckpt_every,
                       val_count=val_count, recipe=patch_recipe, synth_length=synth_length,
                       synth_options=synth_options, linear_data=source.srgb is False, srgb=source.srgb,
                       stage_options=options, quiet=out.quiet or out.json, overwrite=out.overwrite)
    try:
        result, trainer, recipe = run_training(req, warm_start=warm_start, export=export, save_state=save_state)
    except KeyboardInterrupt:
        console_err.print(f"interrupted: checkpoint saved in {run_dir}; continue with --resume", highlight=False)
        raise typer.Exit(130)
    if not trainer.dist.is_main:
        return
    if out.json:
        import json

        print(json.dumps({"run": str(run_dir), "name": trainer.name, "stopped": result.stopped,
                          "last_step": result.last_step, "seconds": result.seconds, "validation": result.last_val,
                          "exported": recipe.get("exported")}, indent=2, default=str))
        return
    val = " ".join(f"{k}={v:.4f}" for k, v in result.last_val.items())
    console_err.print(f"{trainer.name}: {result.stopped} at step {result.last_step} in {result.seconds:.0f} s "
                      f"{val} -> {run_dir}", highlight=False)
    if "exported" in recipe:
        entry = recipe["exported"]
        console_err.print(f"exported {entry['name']} (sha256 {entry['sha256'][:12]}...)", highlight=False)
