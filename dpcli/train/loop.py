"""The training loop every stage shares: checkpoints, resume, seeds, logs, progress, validation, DDP.

A stage is a :class:`StageTrainer` (networks, optimisers, ``train_step``, ``validate``); the
loop feeds it batches from a :class:`~dpcli.train.data.StepBatchSampler`, so the data of step
``s`` depends only on (seed, s) and ``--resume`` continues a run exactly.

Multi-GPU / multi-node: launch with ``torchrun --nproc_per_node N -m dpcli train ...``; the loop
reads RANK / WORLD_SIZE, joins the process group (NCCL on CUDA, gloo on CPU), wraps the networks
in DistributedDataParallel, shards the data, and logs / checkpoints on rank 0 only.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from dpcli.device import autocast
from dpcli.errors import DpError
from dpcli.train.data import Sample, StepBatchSampler, collate, to_device

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class LoopConfig:
    """Options of one training run (``dpdeblur train`` flags)."""

    out: Path
    steps: int = 1000
    batch_size: int = 2
    seed: int = 0
    ckpt_every: int = 500
    # also keep a compact fp16 snapshot every N steps (0 = none) in ``out/snaps/step_NNNNNN.pt``, for
    # weight averaging (``python -m dpcli.train.export out/snaps/*.pt -o avg.pt``)
    keep_every: int = 0
    # linear learning-rate warm-up over the first N steps of the run (counted from a warm start's
    # step), against fresh optimiser moments jolting warm-started weights
    warmup: int = 0
    val_every: int = 250
    log_every: int = 10
    time_budget: float | None = None  # seconds
    precision: str = "fp32"
    device: str = "cpu"
    resume: bool = False
    start_step: int = 0  # first step of a fresh run (a warm start from a compact state continues its count)
    num_workers: int | None = None  # loader processes; None = auto (:func:`auto_workers`)
    # NHWC activations: off by default; on this CPU it measured faster in one run and slower in
    # another (docs/training.md "Training throughput"), so no default gain is established
    channels_last: bool = False
    compile: bool = False  # torch.compile the stage's networks
    quiet: bool = False


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group if the environment asks for one (idempotent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


class StageTrainer:
    """Base class of a training stage. Subclasses fill ``nets``, ``optimizers``, ``schedulers``.

    ``nets`` holds the plain modules (saved, exported); ``run`` the ones used in forward passes
    (DistributedDataParallel wrappers under torchrun, else the same modules).
    """

    name = "stage"
    dp = True  # whether the stage reads both DP views (sets augmentation semantics)
    # networks whose gradients are averaged by hand (allreduce_grads) instead of by a DDP wrapper:
    # a WGAN-GP critic needs double backward (torch.autograd.grad), which DDP does not support
    manual_sync: tuple[str, ...] = ()
    ddp_find_unused = False  # True where some parameters of a wrapped net stay out of its forward pass

    def __init__(self, device: torch.device, precision: str = "fp32") -> None:
        self.device, self.precision = device, precision
        self.nets: dict[str, nn.Module] = {}
        self.run: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.dist = DistInfo()
        self.channels_last = False

    # -- hooks ------------------------------------------------------------------------
    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, batch: Sample) -> torch.Tensor | None:
        """Output compared with ``batch['target']`` for the validation PSNR (None: no image output)."""
        return None

    @torch.no_grad()
    def validate(self, batches: list[Sample], step: int) -> dict[str, float]:
        """Default: mean PSNR of :meth:`predict` against the target over the fixed validation set."""
        from dpcli.train.losses import psnr_batch

        psnrs, base = [], []
        for batch in batches:
            batch = to_device(batch, self.device)
            pred = self.predict(batch)
            if pred is None:
                return {}
            psnrs.append(psnr_batch(pred.float(), batch["target"]))
            base.append(psnr_batch(batch["combined"], batch["target"]))
        return {"val_psnr": float(np.mean(psnrs)), "val_psnr_input": float(np.mean(base))}

    def on_step_end(self, step: int, val_batches: list[Sample]) -> dict[str, float]:
        """After each optimiser step (schedules, threshold search...). Returns figures to log."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # -- helpers ----------------------------------------------------------------------
    def autocast(self):
        return autocast(self.device, self.precision)

    def train_mode(self, on: bool = True) -> None:
        for net in self.nets.values():
            net.train(on)

    def speedups(self, channels_last: bool = False, compile: bool = False) -> None:
        """NHWC memory layout and/or torch.compile for the stage's networks (before training)."""
        self.channels_last = channels_last
        if channels_last:
            for net in self.nets.values():
                net.to(memory_format=torch.channels_last)
        if compile:
            self.run = {k: torch.compile(v) for k, v in (self.run or self.nets).items()}

    def to_device(self, batch: Sample) -> Sample:
        """The batch on the training device (NHWC when :meth:`speedups` asked for it)."""
        batch = to_device(batch, self.device)
        if self.channels_last:
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                     for k, v in batch.items()}
        return batch

    def distribute(self, info: DistInfo) -> None:
        self.dist = info
        self.run = dict(self.nets)
        if not info.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        for key, net in self.nets.items():
            if key not in self.manual_sync and any(p.requires_grad for p in net.parameters()):
                ids = [self.device.index] if self.device.type == "cuda" else None
                self.run[key] = DDP(net, device_ids=ids, find_unused_parameters=self.ddp_find_unused)


    def allreduce_grads(self, key: str) -> None:
        """Average the gradients of ``nets[key]`` over the processes (for ``manual_sync`` networks)."""
        if not self.dist.enabled:
            return
        for p in self.nets[key].parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.dist.world_size


def warm_up(optimizers: dict[str, torch.optim.Optimizer], step: int, start: int, steps: int) -> float:
    """Scale every optimiser's learning rate for step ``step`` (0-based, the step about to run) of a
    linear warm-up over ``steps`` steps from ``start``: ``(step - start + 1) / steps``, then 1.

    The factor and the warm-up's first step are kept in the parameter groups (``warmup_factor``,
    ``warmup_start``), so a checkpoint carries them and ``--resume`` continues the ramp; the factor
    multiplies the group's current rate, so it composes with a scheduler's steps. Returns the factor.
    """
    factor = 1.0
    for opt in optimizers.values():
        for group in opt.param_groups:
            first = group.setdefault("warmup_start", start)
            factor = min(1.0, max(step - first + 1, 1) / steps) if steps > 0 else 1.0
            previous = group.get("warmup_factor", 1.0)
            if factor != previous:
                group["lr"] *= factor / previous
                group["warmup_factor"] = factor
    return factor


# ------------------------------------------------------------------------------ checkpoints

def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through a temp file in the same folder + os.replace (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(trainer: StageTrainer, path: Path, step: int, config: dict[str, Any]) -> None:
    state = {
        "step": step,
        "stage": trainer.name,
        "arch": getattr(getattr(trainer, "cfg", None), "model", None),  # registry name of the main net
        "nets": {k: v.state_dict() for k, v in trainer.nets.items()},
        "optimizers": {k: v.state_dict() for k, v in trainer.optimizers.items()},
        "schedulers": {k: v.state_dict() for k, v in trainer.schedulers.items()},
        "extra": trainer.extra_state(),
        "rng": _rng_state(),
        "config": config,
    }
    atomic_torch_save(state, path)


SNAPSHOT_DIR = "snaps"


def save_snapshot(trainer: StageTrainer, out: Path, step: int) -> Path:
    """The compact fp16 state of step ``step`` kept as ``out/snaps/step_NNNNNN.pt`` (the networks,
    stage state and step: what weight averaging and ``evaluate`` read; no optimiser)."""
    from dpcli.train.export import save_compact_state

    return save_compact_state(trainer, step, Path(out) / SNAPSHOT_DIR / f"step_{step:06d}.pt")


def load_checkpoint(trainer: StageTrainer, path: Path) -> int:
    """Restore a checkpoint written by :func:`save_checkpoint`; returns the step to continue from."""
    if not path.exists():
        raise DpError("no checkpoint to resume from (run without --resume first)", path)
    try:
        # Our own files: optimiser states and RNG states need the full unpickler.
        state = torch.load(path, map_location=trainer.device, weights_only=False)
    except Exception:
        raise DpError("cannot read checkpoint (truncated or not a dpdeblur checkpoint)", path) from None
    if state.get("stage") != trainer.name:
        raise DpError(f"checkpoint is for stage '{state.get('stage')}', not '{trainer.name}'", path)
    for key, net in trainer.nets.items():
        try:
            net.load_state_dict(state["nets"][key])
        except (RuntimeError, KeyError):  # another architecture: another --config or stage options
            raise DpError(f"the checkpoint holds another network than this run builds ({state.get('arch') or key}); "
                          "resume with the run's own options (--config, --stage-set as when it started)",
                          path) from None
    for key, opt in trainer.optimizers.items():
        opt.load_state_dict(state["optimizers"][key])
    for key, sched in trainer.schedulers.items():
        sched.load_state_dict(state["schedulers"][key])
    trainer.load_extra_state(state.get("extra", {}))
    rng = state.get("rng")
    if rng is not None:
        rng["torch"] = rng["torch"].cpu()
        _set_rng_state(rng)
    return int(state["step"])


# ------------------------------------------------------------------------------ logging

class RunLog:
    """Text log (``train.log``) and one JSON line per logged step (``metrics.jsonl``), rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.text = out / "train.log"
        self.jsonl = out / "metrics.jsonl"

    def line(self, message: str) -> None:
        if self.enabled:
            with self.text.open("a") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if self.enabled:
            with self.jsonl.open("a") as handle:
                handle.write(json.dumps({"step": step, **values}) + "\n")


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled)


@dataclass
class RunResult:
    steps_done: int
    last_step: int
    stopped: str  # finished | time-budget | interrupted
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    last_val: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def _interrupts_checkpoint():
    """Ctrl-C and SIGTERM both become KeyboardInterrupt (which saves a checkpoint), also in a
    background job whose shell started it with SIGINT ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def _raise(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _validate(trainer: StageTrainer, batches: list[Sample], step: int, log: RunLog, result: RunResult
              ) -> dict[str, float]:
    trainer.train_mode(False)
    val = trainer.validate(batches, step)
    trainer.train_mode(True)
    result.last_val = val
    log.line(f"step {step} validation " + " ".join(f"{k}={v:.4f}" for k, v in val.items()))
    log.metrics(step, {f"{k}": v for k, v in val.items()})
    return val


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def auto_workers(dataset: Dataset, device: torch.device, steps: int | None = None) -> int:
    """Loader processes: synthetic scenes are drawn (and on a CPU rendered) beside the training
    process, so it never waits for them; one worker with 2 cores, up to 8 feeding a GPU. No
    worker for runs of fewer than 50 ``steps`` (a worker takes seconds to start)."""
    cores = os.cpu_count() or 1
    if cores < 2 or (steps is not None and steps < 50):
        return 0
    if device.type != "cpu":
        return min(8, cores - 1)
    # on a CPU a worker helps only with a core to spare (it measured slower-than-compute end to
    # end on a 2-core machine whose other core ran another training)
    idle = cores - os.getloadavg()[0] if hasattr(os, "getloadavg") else cores
    return 1 if hasattr(dataset, "set_device") and idle >= 1.0 else 0


def _one_thread_worker(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, sampler: StepBatchSampler, workers: int) -> DataLoader:
    """The training loader: ``workers`` processes (one torch thread each), 8 batches in flight."""
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                      worker_init_fn=_one_thread_worker if workers else None,
                      persistent_workers=workers > 0, prefetch_factor=max(2, 8 // workers) if workers else None)


def train(trainer: StageTrainer, dataset: Dataset, cfg: LoopConfig, val_batches: list[Sample] | None = None,
          on_interrupt_save: bool = True) -> RunResult:
    """Run ``trainer`` for ``cfg.steps`` optimiser steps (or until the time budget) on ``dataset``.

    Returns a :class:`RunResult`; the checkpoint ``cfg.out / checkpoint.pt`` holds the final state.
    Ctrl-C saves a checkpoint, then re-raises KeyboardInterrupt.
    """
    out = Path(cfg.out)
    info = init_distributed(trainer.device)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, info.is_main)
    ckpt_path = out / CHECKPOINT_NAME
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    start_step = cfg.start_step
    if cfg.resume:
        start_step = load_checkpoint(trainer, ckpt_path)
        log.line(f"resumed {trainer.name} from step {start_step}")
    else:
        seed_everything(cfg.seed + info.rank)
    trainer.distribute(info)
    val_batches = val_batches or []
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, cfg.steps, start_step,
                               info.rank, info.world_size)
    if hasattr(dataset, "set_device"):  # synthetic scenes: a GPU renders its own batches
        dataset.set_device(trainer.device)
    workers = (auto_workers(dataset, trainer.device, cfg.steps - start_step) if cfg.num_workers is None
               else cfg.num_workers)
    trainer.speedups(channels_last=cfg.channels_last, compile=cfg.compile)
    loader = make_loader(dataset, sampler, workers)
    log.line(f"start {trainer.name}: steps {start_step}->{cfg.steps}, batch {cfg.batch_size} x {info.world_size}, "
             f"precision {cfg.precision}, seed {cfg.seed}" + (f", lr warm-up {cfg.warmup} steps" if cfg.warmup else ""))
    result = RunResult(0, start_step, "finished", 0.0)
    t0 = time.perf_counter()
    step = start_step
    window_t, window_n = time.perf_counter(), 0
    show = info.is_main and not cfg.quiet
    try:
        with _interrupts_checkpoint(), _progress(show) as progress:
            task = progress.add_task(trainer.name, total=cfg.steps, completed=start_step, info="")
            for batch in loader:
                trainer.train_mode(True)
                if isinstance(batch, list):  # drawn in a worker, rendered here on the device
                    batch = dataset.materialise(batch, trainer.device)
                scale = warm_up(trainer.optimizers, step, cfg.start_step, cfg.warmup) if cfg.warmup else None
                values = trainer.train_step(trainer.to_device(batch), step)
                if scale is not None and scale < 1.0:
                    values["lr_scale"] = scale
                step += 1
                values.update(trainer.on_step_end(step, val_batches))
                result.steps_done += 1
                window_n += next(iter(batch.values())).shape[0] * info.world_size
                record = {"step": step, **{k: float(v) for k, v in values.items()}}
                result.history.append(record)
                if cfg.val_every and step % cfg.val_every == 0 and val_batches and info.is_main:
                    record.update(_validate(trainer, val_batches, step, log, result))
                if step % max(cfg.log_every, 1) == 0 or step == cfg.steps:
                    rate = window_n / max(time.perf_counter() - window_t, 1e-9)
                    window_t, window_n = time.perf_counter(), 0
                    record["samples_per_s"] = rate
                    log.metrics(step, {k: v for k, v in record.items() if k != "step"})
                    log.line(f"step {step} " + " ".join(f"{k}={v:.5g}" for k, v in record.items() if k != "step"))
                loss = values.get("loss", float("nan"))
                progress.update(task, completed=step, info=f"loss {loss:.4g}  {record.get('samples_per_s', 0):.2f} img/s")
                if cfg.ckpt_every and step % cfg.ckpt_every == 0 and info.is_main:
                    save_checkpoint(trainer, ckpt_path, step, config)
                if cfg.keep_every and step % cfg.keep_every == 0 and info.is_main:
                    save_snapshot(trainer, out, step)
                if cfg.time_budget is not None and time.perf_counter() - t0 >= cfg.time_budget:
                    result.stopped = "time-budget"
                    break
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        if on_interrupt_save and info.is_main:
            save_checkpoint(trainer, ckpt_path, step, config)
            log.line(f"interrupted at step {step}; checkpoint saved")
        raise
    finally:
        result.last_step = step
        result.seconds = time.perf_counter() - t0
    if info.is_main:
        if val_batches and result.steps_done and not (cfg.val_every and step % cfg.val_every == 0):
            _validate(trainer, val_batches, step, log, result)  # the run always ends with a validation
        save_checkpoint(trainer, ckpt_path, step, config)
        log.line(f"stopped ({result.stopped}) at step {step} after {result.seconds:.1f} s")
    if info.enabled:
        dist.barrier()
    return result


__all__ = ["LoopConfig", "StageTrainer", "train", "auto_workers", "make_loader", "save_checkpoint",
           "load_checkpoint", "save_snapshot", "warm_up",
           "atomic_torch_save", "init_distributed", "DistInfo", "RunResult",
           "seed_everything", "CHECKPOINT_NAME", "SNAPSHOT_DIR"]
