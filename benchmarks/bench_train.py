"""Training throughput (samples/s) of each training configuration, and the levers that raise it.

For every configuration (BaMBNet deblur small, DefocusGAN generator small with and without its
VGG perceptual loss, DefocusGAN defocus-map net small) it times optimiser steps:

* compute only (one fixed synthetic batch, no data cost): fp32, bf16 autocast, channels_last,
  both, and torch.compile (``--compile``: compilation takes minutes on a CPU);
* end to end with on-the-fly synthetic scenes (dslr colour, the Debian photos when installed,
  full-frame scenes): rendering in the training process (0 workers) vs in 1 loader worker.

Each measurement is a few warm-up steps, then ``--steps`` timed steps. Prints a table; ``--json``
for scripts. Keep the other core free for the loader worker when comparing workers.

    python benchmarks/bench_train.py --steps 20 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from _common import cpu_facts

CONFIGS = {
    "bambnet deblur small": dict(model="bambnet", stage="deblur"),
    "defocusgan generator small": dict(model="defocusgan", stage="generator"),
    "defocusgan generator small, no perceptual": dict(model="defocusgan", stage="generator",
                                                      stage_options={"perceptual": False}),
    "defocusgan defocus small": dict(model="defocusgan", stage="defocus"),
}
LEVERS = {  # name -> (precision, channels_last, compile)
    "fp32": ("fp32", False, False),
    "bf16": ("bf16", False, False),
    "fp32 channels_last": ("fp32", True, False),
    "bf16 channels_last": ("bf16", True, False),
    "fp32 compile": ("fp32", False, True),
}


def _synth_options(photos: bool) -> dict:
    options = {"camera": "dslr", "isp": True, "fullframe_prob": 0.4, "highlight_prob": 0.3}
    if photos:
        options["photos"] = ["debian"]
    return options


def _prepare(name: str, precision: str, crop: int | None, batch: int | None, photos: bool):
    from dpcli.train.loop import DistInfo
    from dpcli.train.runner import TrainRequest, prepare

    spec = CONFIGS[name]
    req = TrainRequest(model=spec["model"], stage=spec["stage"], config="small", precision=precision,
                       out=Path(tempfile.mkdtemp(prefix="bench_train_")), crop=crop, batch_size=batch,
                       val_count=0, synth_options=_synth_options(photos), quiet=True,
                       stage_options=dict(spec.get("stage_options", {})))
    trainer, dataset, _, loop_cfg, recipe = prepare(req)
    trainer.distribute(DistInfo())  # one process: the networks run as they are
    return trainer, dataset, loop_cfg


def _time_steps(trainer, batches, steps: int, warmup: int) -> float:
    """Samples per second over ``steps`` optimiser steps after ``warmup`` steps."""
    trainer.train_mode(True)
    it = iter(batches)
    n = 0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
            n = 0
        batch = next(it)
        if isinstance(batch, list):
            batch = batches.dataset.materialise(batch, trainer.device)
        trainer.train_step(trainer.to_device(batch), step)
        n += next(iter(batch.values())).shape[0]
    return n / (time.perf_counter() - start)


def compute_only(name: str, lever: str, args) -> float:
    from dpcli.train.data import collate

    precision, channels_last, compile_ = LEVERS[lever]
    trainer, dataset, loop_cfg = _prepare(name, precision, args.crop, args.batch, False)
    trainer.speedups(channels_last=channels_last, compile=compile_)
    batch = collate([dataset[(i, 1000 + i)] for i in range(loop_cfg.batch_size)])

    class Repeat:  # the same batch every step
        dataset = None

        def __iter__(self):
            while True:
                yield batch

    warmup = 3 if not compile_ else 4
    return _time_steps(trainer, Repeat(), args.steps, warmup)


def end_to_end(name: str, workers: int, args) -> float:
    from dpcli.train.data import StepBatchSampler
    from dpcli.train.loop import make_loader

    trainer, dataset, loop_cfg = _prepare(name, "fp32", args.crop, args.batch, args.photos)
    warmup = 3
    sampler = StepBatchSampler(len(dataset), loop_cfg.batch_size, 0, warmup + args.steps)
    loader = make_loader(dataset, sampler, workers)
    loader_iter = iter(loader)
    next(loader_iter)  # worker start-up and first scenes (photo decoding) are not throughput

    class Wrapped:
        def __init__(self):
            self.dataset = dataset

        def __iter__(self):
            yield from loader_iter

    return _time_steps(trainer, Wrapped(), args.steps - 1, warmup)


def render_only(args) -> float:
    """Synthetic scenes per second at the small configurations' crop, in this process."""
    from dpcli.train.data import SynthDataset

    ds = SynthDataset(size=args.crop or 128, **_synth_options(args.photos))
    ds[(0, 999)]
    start = time.perf_counter()
    for i in range(args.steps):
        ds[(i, i)]
    return args.steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    ap.add_argument("--crop", type=int, default=None, help="crop px (default: the small configs', 128)")
    ap.add_argument("--batch", type=int, default=None, help="batch (default: the small configs', 2)")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile)")
    ap.add_argument("--no-photos", dest="photos", action="store_false",
                    help="end-to-end scenes without the Debian photos")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.photos:
        try:
            from dpcli.synth.photos import list_photos

            list_photos(("debian",))
        except Exception:
            print("Debian photo packages not installed: end-to-end scenes without them")
            args.photos = False
    levers = [k for k in LEVERS if args.compile or not LEVERS[k][2]]
    rows = []
    for name in args.configs:
        row = {"config": name}
        for lever in levers:
            try:
                row[lever] = compute_only(name, lever, args)
            except Exception as exc:  # a lever that fails on this machine is reported, not fatal
                row[lever] = f"failed: {type(exc).__name__}"
        for w in (0, 1):
            row[f"synth e2e, {w} worker{'s' if w != 1 else ''}"] = end_to_end(name, w, args)
        rows.append(row)
    render = render_only(args)
    info = dict(cpu=cpu_facts()["cpu"], cores=os.cpu_count(),
                threads=args.threads, torch=torch.__version__, steps=args.steps,
                crop=args.crop or 128, batch=args.batch or 2, photos=args.photos,
                render_scenes_per_s=render)
    if args.json:
        print(json.dumps(dict(info=info, rows=rows), indent=1))
        return
    cols = [k for k in rows[0] if k != "config"]
    print(f"training throughput, samples/s (crop {info['crop']}, batch {info['batch']}, {args.threads} "
          f"thread(s), {args.steps} timed steps, torch {torch.__version__}, {os.cpu_count()} cores)")
    print("| configuration | " + " | ".join(cols) + " |")
    print("| --- | " + " | ".join("---:" for _ in cols) + " |")
    for row in rows:
        print(f"| {row['config']} | " + " | ".join(
            f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in cols) + " |")
    print(f"synthetic scene rendering alone (dslr, isp, photos={args.photos}, full-frame 40 %): "
          f"{render:.2f} scenes/s in one thread")


if __name__ == "__main__":
    main()
