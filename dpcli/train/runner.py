"""One front door for ``dpdeblur train``: build data, stage and loop from a preset plus overrides."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from dpcli.errors import DpError
from dpcli.train.configs import epochs_to_steps, preset
from dpcli.train.data import PatchRecipe, build_dataset, fixed_batches
from dpcli.train.loop import LoopConfig, RunResult, StageTrainer, seed_everything, train
from dpcli.train.request import TrainRequest


# What a training run writes into its folder (a folder holding any of them holds a run).
RUN_FILES = ("checkpoint.pt", "metrics.jsonl", "train.log", "run.json", "patch_index.json", "options.json")


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Nothing lost: a folder holding a run continues only with ``--resume``; ``--overwrite``
    removes its run files and starts over; otherwise one line names the folder and the choices.

    Call before any data or network is built (rank 0 only under torchrun)."""
    out = Path(out)
    if resume and overwrite:
        raise DpError("--resume and --overwrite contradict each other: continue the run or start over")
    if out.exists() and not out.is_dir():
        raise DpError("the run folder (-o) is a file, not a folder", out)
    present = [name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if not (out / "checkpoint.pt").is_file():
            raise DpError("nothing to resume: no checkpoint.pt here (run without --resume to start)", out)
        return
    if not present:
        return
    if not overwrite:
        step = _checkpoint_step(out)
        at = f" at step {step}" if step is not None else ""
        raise DpError(f"holds a training run{at} ({', '.join(present)}): continue it with --resume, start "
                      "over with --overwrite, or choose another -o", out)
    for name in present:
        (out / name).unlink()


def _checkpoint_step(out: Path) -> int | None:
    """Last logged step of the run in ``out`` (from metrics.jsonl; None when unknown)."""
    try:
        lines = (out / "metrics.jsonl").read_text().strip().splitlines()
        return int(json.loads(lines[-1]).get("step")) if lines else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _stage_trainer(model: str, stage: str, options: dict[str, Any], device: torch.device,
                   precision: str) -> StageTrainer:
    """The stage's trainer (registered by its family, :mod:`dpcli.train.stages`); an unknown
    option names the valid ones."""
    from dpcli.train.stages import get_stage

    spec = get_stage(model, stage)
    try:
        return spec.trainer(spec.config(**options), device, precision)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        raise DpError(f"{model} stage {stage}: {exc} (see --help for the stage options)") from None


def prepare(req: TrainRequest) -> tuple[StageTrainer, Any, list, LoopConfig, dict[str, Any]]:
    """Resolve the preset, build dataset, validation batches, stage trainer and loop config."""
    from dpcli.train.stages import get_stage

    spec = get_stage(req.model, req.stage)
    stage = spec.name
    if req.precision == "fp16":  # fp16 gradients underflow without a GradScaler, which the stages do not use
        raise DpError("--precision fp16 is not supported for training; use bf16 (CPU AMX / recent GPUs) or fp32")
    cfg = preset(req.model, stage, req.config)
    stage_opts = {**cfg["stage"], **{k: v for k, v in req.stage_options.items() if v is not None}}
    if req.lr is not None:
        stage_opts["lr"] = req.lr
    loop = cfg["loop"]
    crop = req.crop or loop["crop"]
    batch = req.batch_size or loop["batch_size"]
    synthetic = str(req.data) == "synth"
    use_recipe = loop.get("recipe", False) if req.recipe is None else req.recipe
    recipe = PatchRecipe() if use_recipe and not synthetic else None
    out = Path(req.out)
    maps = synthetic or _folder_has_maps(Path(req.data))
    dp = spec.uses_dp(stage_opts, maps)
    synth_options = {**spec.synth_options, **req.synth_options} if synthetic else req.synth_options
    kwargs = dict(crop=crop, dp=dp, recipe=recipe, synth_length=req.synth_length, synth_options=synth_options,
                  index_cache=out / "patch_index.json")
    kwargs["srgb"] = False if req.linear_data else req.srgb  # None: the folder says (dpdeblur synth records it)
    dataset = build_dataset(req.data, "train", **kwargs)
    if "srgb" in {f.name for f in dataclasses.fields(spec.config)}:  # stages that measure in a known
        stage_opts.setdefault("srgb", dataset.srgb)  # encoding (reblur losses in linear light): say the data's
    val_set = _validation_set(req, kwargs)
    val_batches = fixed_batches(val_set, req.val_count, batch) if req.val_count else []
    world = int(__import__("os").environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, len(dataset) // (batch * world))
    stage_opts = {k: epochs_to_steps(v, steps_per_epoch) for k, v in stage_opts.items()}
    steps = req.steps or loop.get("steps") or int(loop["epochs"] * steps_per_epoch)
    device = torch.device(req.device)
    seed_everything(req.seed)  # identical initial weights on every rank and every rerun
    trainer = _stage_trainer(req.model, stage, stage_opts, device, req.precision)
    loop_cfg = LoopConfig(out=out, steps=steps, batch_size=batch, seed=req.seed,
                          ckpt_every=req.ckpt_every if req.ckpt_every is not None else loop["ckpt_every"],
                          val_every=req.val_every if req.val_every is not None else loop["val_every"],
                          keep_every=req.keep_every, warmup=req.warmup, time_budget=req.time_budget,
                          precision=req.precision,
                          device=req.device, resume=req.resume, quiet=req.quiet)
    recipe_info = {"model": req.model, "stage": stage, "config": req.config, "data": str(req.data),
                   "crop": crop, "batch_size": batch, "steps": steps, "seed": req.seed, "precision": req.precision,
                   "patch_recipe": recipe is not None, "stage_options": {k: str(v) if isinstance(v, Path) else v
                                                                          for k, v in stage_opts.items()},
                   "synth_options": req.synth_options, "augment": "hflip(swap L/R)+vflip" + ("" if dp else "+rot90")}
    return trainer, dataset, val_batches, loop_cfg, recipe_info


def _folder_has_maps(root: Path) -> bool:
    return root.is_dir() and any(root.rglob("*_defocus.tif*"))


def _validation_set(req: TrainRequest, kwargs: dict[str, Any]):
    """The fixed validation split: DPDD ``val`` (else ``test``, else ``train``) or synthetic scenes."""
    if str(req.data) == "synth":
        return build_dataset("synth", **kwargs)
    for split in ("val", "test", "train"):
        try:
            return build_dataset(req.data, split, **{**kwargs, "recipe": None, "index_cache": None})
        except DpError:
            continue
    raise DpError("no validation scenes found", req.data)


def run_training(req: TrainRequest, *, warm_start: Path | None = None, export: str | None = None,
                 save_state: Path | None = None) -> tuple[RunResult, StageTrainer, dict[str, Any]]:
    """Train one stage; optionally warm-start from / save a compact state and export fp16 weights.

    Returns (result, trainer, recipe); ``recipe["exported"]`` holds the manifest entry if exported.
    """
    import os

    from dpcli.train.export import export_weights, load_compact_state, save_compact_state
    from dpcli.train.run_folder import FIXED, FREE, check_not_done, checkpoint_step, resume_request, save_options

    main = os.environ.get("RANK", "0") == "0"
    if main:  # one process decides; the others find the folder settled
        check_run_folder(req.out, req.resume, req.overwrite)
    if req.resume:  # the run's own options: a conflicting one is refused before anything is built
        req = resume_request(req, given={*FIXED, *FREE})
    trainer, dataset, val_batches, loop_cfg, recipe = prepare(req)
    if req.resume and (done := checkpoint_step(req.out)) is not None:
        check_not_done(req.out, done, loop_cfg.steps)
    if main:  # a resume with a larger --steps records it: the next resume goes on from there
        save_options(req, req.out)
    if warm_start is not None and not req.resume:
        recipe["warm_start"] = str(warm_start)
        recipe["warm_start_step"] = loop_cfg.start_step = load_compact_state(trainer, warm_start)
    result = train(trainer, dataset, loop_cfg, val_batches)
    if not trainer.dist.is_main:
        return result, trainer, recipe
    summary = {"recipe": recipe, "stopped": result.stopped, "last_step": result.last_step,
               "seconds": result.seconds, "last_val": result.last_val}
    (Path(loop_cfg.out) / "run.json").write_text(json.dumps(summary, indent=2, default=str))
    if save_state is not None:
        save_compact_state(trainer, result.last_step, save_state)
    if export:
        net = next(iter(trainer.nets.values()))  # the stage's main network comes first
        recipe["exported"] = export_weights(net, recipe["stage_options"]["model"], export,
                                            metrics=result.last_val, recipe=recipe | {"steps_done": result.last_step},
                                            training_data=str(req.data))
    return result, trainer, recipe
