"""`dpdeblur train`: train the stages of a network family on DPDD-layout folders or synthetic scenes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dpcli.cli.app import STAGES, TRAINABLE, app
from dpcli.cli.console import console_err
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, parse_sets, renamed, with_bundles
from dpcli.errors import DpError

_EXAMPLES = """
[bold]Examples[/bold]

  # under a minute: the tiny test network on synthetic scenes
  dpdeblur train bambnet --data synth --config test --steps 5 -o runs/try

  # BaMBNet on on-the-fly synthetic DP scenes, CPU-sized, 2 hours at most
  dpdeblur train bambnet --data synth --config small -o runs/bamb \\
      --time-budget 7200

  # reproduce the paper on DPDD (both stages; 512 px patches, 60%
  # overlap, 30% least sharp dropped)
  dpdeblur train bambnet --stage coc --data DPDD --config paper -o runs/coc
  dpdeblur train bambnet --stage deblur --data DPDD --config paper \\
      -o runs/deblur --coc-weights runs/coc/checkpoint.pt

  # DefocusGAN: defocus-map net, then the generator guided by its maps
  dpdeblur train defocusgan --stage defocus --data DPDD --config paper \\
      -o runs/dm
  dpdeblur train defocusgan --stage generator --data DPDD --config paper \\
      -o runs/gan --defocus-weights runs/dm/checkpoint.pt

  # continue after Ctrl-C or a time budget (the run folder holds the
  # options), then further; export fp16 weights into dpcli/weights/
  # and its manifest
  dpdeblur train bambnet -o runs/bamb --resume
  dpdeblur train bambnet -o runs/bamb --resume --steps 20000 --export v1

  # DSLR colour data from natural photos (any folder; 'debian' = the
  # Debian wallpaper photos)
  dpdeblur train defocusgan --data synth --synth-camera dslr \\
      --photos debian --synth-set fullframe_prob=0.4 -o runs/gen_dslr

  # with textures soft in themselves (soft_prob), snapshots every 250 steps,
  # then their weight average
  dpdeblur train defocusgan --data synth --synth-set soft_prob=0.3 \\
      --keep-every 250 -o runs/gen_soft
  python -m dpcli.train.export runs/gen_soft/snaps/*.pt -o avg.pt

  # from a compact state, the learning rate ramped up over 500 steps
  dpdeblur train defocusgan --data synth --warm-start STATE.pt \\
      --warmup 500 -o runs/gen_warm

  # several GPUs / nodes
  torchrun --nproc_per_node 4 -m dpcli train bambnet --data DPDD \\
      --config paper --device cuda
"""


@app.command("train", epilog=_EXAMPLES)
@with_bundles
def train_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help=f"Network family: {TRAINABLE}."),
    data: str = typer.Option("synth", "--data", help="DPDD-layout folder (real DPDD or `dpdeblur synth` "
                             "output, NAME_defocus.tiff maps used when present) or 'synth' (on-the-fly scenes)."),
    stage: Optional[str] = typer.Option(None, "--stage", help=f"Training stage: {STAGES}."),
    config: str = typer.Option("small", "--config", help="test (seconds) | small (CPU) | paper (the papers' recipe)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps (default: the config's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch per process."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Training crop in px (synthetic: scene size)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: the config's)."),
    warmup: int = typer.Option(0, "--warmup", help="Raise the learning rate linearly over the first N "
                                "steps of the run (from a --warm-start's step), against the fresh optimiser "
                                "jolting trained weights (0 = none)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the -o folder from its "
                                "checkpoint.pt, exactly, with the options it was started with (recorded in "
                                "the folder); a larger --steps trains further."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop (with a checkpoint) after this many seconds."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, data order, crops and flips."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Validation PSNR every N steps (0 = never)."),
    ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every", help="Checkpoint every N steps."),
    keep_every: int = typer.Option(0, "--keep-every", help="Also keep a compact fp16 snapshot every N steps "
                                   "(RUN/snaps/step_NNNNNN.pt) for weight averaging: python -m "
                                   "dpcli.train.export RUN/snaps/*.pt -o avg.pt (0 = none)."),
    val_count: int = typer.Option(8, "--val-count", help="Fixed validation samples (BaMBNet's COC stage also "
                                  "fits its blur-size thresholds on them)."),
    patch_recipe: Optional[bool] = typer.Option(None, "--patch-recipe/--no-patch-recipe",
                                                help="DPDD patches: 512 px, 60% overlap, drop 30% least sharp."),
    coc_weights: Optional[Path] = typer.Option(None, "--coc-weights", help="BaMBNet deblur: trained COC net "
                                               "(checkpoint.pt or .safetensors) for the defocus masks."),
    coc_source: str = typer.Option("auto", "--coc-source", help="BaMBNet deblur masks from: net | gt | auto."),
    defocus_weights: Optional[Path] = typer.Option(None, "--defocus-weights",
                                                   help="DefocusGAN generator: trained defocus-map net."),
    r_max: Optional[float] = typer.Option(None, "--r-max", help="Largest COC radius in px (paper 25)."),
    synth_length: int = typer.Option(512, "--synth-length", help="Synthetic scenes per epoch."),
    synth_camera: str = typer.Option("dslr", "--synth-camera", help="Synthetic camera: dslr (DPDD-like, "
                                     "sRGB) | phone (Pixel-like radii, linear) | mixed (as dpdeblur synth)."),
    synth_grey: bool = typer.Option(False, "--synth-grey", help="Grey synthetic scenes replicated to RGB "
                                    "(like Pixel 4's single green DP plane)."),
    photos: Optional[list[str]] = typer.Option(None, "--photos", help="Synthetic scenes: folder (recursive) or "
                                               "file of natural photos for textures, repeatable; 'debian' = "
                                               "the Debian wallpaper photos (docs/training.md)."),
    synth_set: Optional[list[str]] = typer.Option(None, "--synth-set", help="Synthetic scene option KEY=VALUE "
                                                  "(repeatable; as dpdeblur synth --synth-set; the options: "
                                                  "docs/training.md), e.g. fullframe_prob=0.4."),
    warm_start: Optional[Path] = typer.Option(None, "--warm-start", help="Initialise from a compact state "
                                              "(dpcli/weights/checkpoints/*.pt): weights + thresholds, fresh "
                                              "optimiser."),
    export: Optional[str] = typer.Option(None, "--export", help="After training write "
                                         "dpcli/weights/ARCH.NAME.safetensors (fp16) and its manifest entry."),
    save_state: Optional[Path] = typer.Option(None, "--save-state", help="Also write the compact fp16 state here."),
    stage_set: Optional[list[str]] = typer.Option(None, "--stage-set", help="Training stage option KEY=VALUE "
                                                  "(repeatable), e.g. search_every=300 lam=0.02."),
    set_alias: Optional[list[str]] = typer.Option(None, "--set", hidden=True),
    source: InputOptions = bundle(omit=("black_level", "white_level", "white_sheet", "swap_lr", "camera",
                                        "recursive"),
                                  help={"srgb": "The --data folder holds sRGB / linear values (default: the "
                                        "folder says; dpdeblur synth records it, DPDD is sRGB)."}),
    out: OutputOptions = bundle(omit=("bit_depth", "format", "quality", "report"), defaults={"folder": Path("runs/train")},
                                help={"folder": "Run folder: checkpoint.pt, train.log, metrics.jsonl, run.json. "
                                      "One that holds a run continues only with --resume.",
                                      "overwrite": "Start over in a run folder that holds a run (its run "
                                      "files are removed).",
                                      "json": "Print the run's summary as JSON on stdout."}),
    dev: DeviceOptions = bundle(omit=("tile", "tile_overlap", "tta")),
) -> None:
    """Train a network (one stage of a network family) with checkpoints, resume and validation."""
    from dpcli.device import resolve_precision
    from dpcli.train.run_folder import RunDone, resume_request
    from dpcli.train.runner import TrainRequest, run_training

    set_ = renamed(stage_set, set_alias, "--stage-set", "--set")
    dev.apply_threads()
    _check_options(coc_source, dev.precision)
    run_dir = out.folder or Path("runs/train")
    synth_options = _synth_options(synth_camera, synth_grey, photos, synth_set)
    flags = dict(coc_weights=coc_weights, coc_source=coc_source, defocus_weights=defocus_weights, r_max=r_max)
    req = TrainRequest(model=model, data=data, stage=stage, config=config, out=run_dir, steps=steps,
                       batch_size=batch_size, crop=crop, lr=lr, warmup=warmup, seed=seed, resume=resume,
                       time_budget=time_budget,
                       precision=resolve_precision(dev.precision, dev.device), device=dev.device, val_every=val_every, ckpt_every=ckpt_every,
                       keep_every=keep_every, val_count=val_count, recipe=patch_recipe, synth_length=synth_length,
                       synth_options=synth_options, linear_data=source.srgb is False, srgb=source.srgb,
                       stage_options=_stage_options(model, stage, flags, set_), quiet=out.quiet or out.json,
                       overwrite=out.overwrite)
    if resume:  # the options not typed again come from the run folder; a conflicting one is refused
        req = resume_request(req, _given_fields(ctx))
    try:
        result, trainer, recipe = run_training(req, warm_start=warm_start, export=export, save_state=save_state)
    except RunDone as done:
        console_err.print(done.one_line(), highlight=False, soft_wrap=True)
        raise typer.Exit(0)
    except KeyboardInterrupt:
        console_err.print(f"interrupted: checkpoint saved in {run_dir}; continue with --resume", highlight=False)
        raise typer.Exit(130)
    if trainer.dist.is_main:
        _report(result, trainer, recipe, run_dir, out.json)


def _check_options(coc_source: str, precision: str) -> None:
    """Refuse option values no stage takes, before anything is built."""
    if coc_source not in ("auto", "net", "gt"):
        raise DpError(f"--coc-source {coc_source}: expected auto, net or gt")
    if precision == "fp16":  # fp16 gradients underflow without a GradScaler, which the stages do not use
        raise DpError("--precision fp16 is not supported for training; use bf16 or fp32")


def _synth_options(camera: str, grey: bool, photos: list[str] | None, synth_set: list[str] | None) -> dict:
    """Synthetic scene options of ``--synth-camera/--synth-grey/--photos/--synth-set`` (checked: a
    missing photo folder or an unknown scene option fails here, before any training)."""
    synth_options: dict = {"camera": camera, "grey": grey}
    if photos or synth_set:
        from dpcli.synth.photos import list_photos
        from dpcli.synth.scene import scene_options

        extra = parse_sets(synth_set or [], "--synth-set")
        if photos:
            list_photos(tuple(photos))  # a missing folder fails here, before any training
            extra["photos"] = list(photos)
        synth_options.update(scene_options(extra))
    return synth_options


def _stage_options(model: str, stage: str | None, flags: dict, stage_set: list[str] | None) -> dict:
    """The training stage's options: the flags it takes (of ``flags``), then ``--stage-set KEY=VALUE``."""
    from dpcli.train.stages import get_stage

    options: dict = dict(get_stage(model, stage).flags(flags))  # the flags this stage takes
    options.update(parse_sets(stage_set or [], "--stage-set"))
    return options


def _report(result, trainer, recipe: dict, run_dir: Path, as_json: bool) -> None:
    """The run's summary: JSON on stdout, else one line (and the exported weights) on stderr."""
    if as_json:
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


# command-line parameter -> the TrainRequest field it sets (for --resume: what was typed again)
_FIELDS = {"model": "model", "data": "data", "stage": "stage", "config": "config", "batch_size": "batch_size",
           "crop": "crop", "lr": "lr", "warmup": "warmup", "seed": "seed", "val_count": "val_count",
           "patch_recipe": "recipe",
           "synth_length": "synth_length", "synth_camera": "synth_options", "synth_grey": "synth_options",
           "photos": "synth_options", "synth_set": "synth_options", "coc_weights": "stage_options",
           "coc_source": "stage_options", "defocus_weights": "stage_options", "r_max": "stage_options",
           "stage_set": "stage_options", "set_alias": "stage_options", "source__srgb": "srgb", "steps": "steps",
           "val_every": "val_every", "ckpt_every": "ckpt_every", "keep_every": "keep_every",
           "dev__precision": "precision"}


def _given_fields(ctx: typer.Context) -> set[str]:
    """TrainRequest fields set by what was typed (not by a default)."""
    typed = set()
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT"):
            typed.add(name)
    fields = {_FIELDS[n] for n in typed if n in _FIELDS}
    if "srgb" in fields:
        fields.add("linear_data")
    return fields
