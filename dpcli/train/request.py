"""What ``dpdeblur train`` accepts, as one dataclass: :class:`TrainRequest`.

A field's ``flag`` metadata names the option(s) that set it when the field defines the run (a resume
must not change it, :mod:`dpcli.train.run_folder`); ``resume="free"`` marks a field a resume takes
from the run's record when not given again but lets change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _fixed(default: Any = None, *, flag: str, factory: Any = None) -> Any:
    """A run-defining field set by ``flag`` (``--a/--b`` when several options set it)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"flag": flag})
    return field(default=default, metadata={"flag": flag})


def _free(default: Any = None) -> Any:
    """A field a resume takes from the record when not given again, free to change."""
    return field(default=default, metadata={"resume": "free"})


@dataclass
class TrainRequest:
    """Everything ``dpdeblur train`` accepts (None = the preset's value).

    Fields in the order a run's record (``options.json``) lists them: what defines the run, then
    what a resume may change, then where and how it runs.
    """

    model: str = field(metadata={"flag": "MODEL"})
    data: str = _fixed("synth", flag="--data")
    stage: str | None = _fixed(flag="--stage")
    config: str = _fixed("small", flag="--config")
    batch_size: int | None = _fixed(flag="--batch-size")
    crop: int | None = _fixed(flag="--crop")
    lr: float | None = _fixed(flag="--lr")
    warmup: int = _fixed(0, flag="--warmup")  # learning-rate warm-up steps (LoopConfig.warmup)
    seed: int = _fixed(0, flag="--seed")
    val_count: int = _fixed(8, flag="--val-count")
    recipe: bool | None = _fixed(flag="--patch-recipe")
    synth_length: int = _fixed(512, flag="--synth-length")
    # folder data holds linear values (Pixel-style raw), not sRGB
    linear_data: bool = _fixed(False, flag="--linear")
    # folder data encoding as given (--srgb/--linear); None: the folder says
    srgb: bool | None = _fixed(flag="--srgb/--linear")
    synth_options: dict[str, Any] = _fixed(flag="--synth-camera/--synth-grey/--photos/--synth-set", factory=dict)
    stage_options: dict[str, Any] = _fixed(flag="--coc-weights/--coc-source/--defocus-weights/--r-max/--stage-set",
                                           factory=dict)
    steps: int | None = _free()
    val_every: int | None = _free()
    ckpt_every: int | None = _free()
    keep_every: int = _free(0)  # compact snapshots for weight averaging (LoopConfig.keep_every)
    precision: str = _free("fp32")
    out: Path = Path("runs/train")
    resume: bool = False
    time_budget: float | None = None
    device: str = "cpu"
    quiet: bool = False
    overwrite: bool = False  # start over in a folder that holds a run (its run files are removed)
