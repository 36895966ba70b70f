"""A run folder is self-contained: it records the options that define its run (``options.json``,
written when the run starts), so ``--resume`` needs only the folder.

:func:`resume_request` fills the options a resume does not give from the record and refuses one
that conflicts with it, in one line naming the flag; :func:`check_not_done` says when a resumed run
has already reached its steps and how to train further. Options that do not change what is
trained (time budget, device, threads, checkpoint and validation cadence, steps) may differ.
"""
from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from dpcli.errors import DpError
from dpcli.train.request import TrainRequest

OPTIONS_FILE = "options.json"

# TrainRequest field -> the flag(s) that set it: what defines a run and must not change on resume
FIXED = {f.name: f.metadata["flag"] for f in fields(TrainRequest) if "flag" in f.metadata}
# taken from the record when not given again, but free to change
FREE = tuple(f.name for f in fields(TrainRequest) if f.metadata.get("resume") == "free")


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def save_options(req: TrainRequest, out: Path) -> None:
    """Record the run-defining options in ``out/options.json`` (at the start of a fresh run)."""
    from dpcli.io.images import atomic_write_bytes

    record = {name: _plain(getattr(req, name)) for name in (*FIXED, *FREE)}
    atomic_write_bytes(Path(out) / OPTIONS_FILE, json.dumps(record, indent=1).encode(), overwrite=True)


def read_options(out: Path) -> dict[str, Any] | None:
    """The recorded options of the run in ``out``: ``options.json``, else what an older version's
    ``run.json`` holds of them; None when the folder records neither."""
    out = Path(out)
    try:
        return json.loads((out / OPTIONS_FILE).read_text())
    except (OSError, ValueError):
        pass
    try:
        recipe = json.loads((out / "run.json").read_text())["recipe"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    keys = {"model": "model", "stage": "stage", "config": "config", "data": "data", "crop": "crop",
            "batch_size": "batch_size", "seed": "seed", "synth_options": "synth_options"}
    return {field: recipe[key] for field, key in keys.items() if key in recipe}


def resume_request(req: TrainRequest, given: set[str]) -> TrainRequest:
    """``req`` for ``--resume``: the fields the user did not give (``given``: TrainRequest field
    names set on the command line) come from the run's record; a given one that differs from the
    record is refused in one line. Without a record ``req`` is returned as it is."""
    stored = read_options(req.out)
    if stored is None:
        return req
    conflicts = [name for name in FIXED if name in given and name in stored
                 and _plain(getattr(req, name)) != stored[name]]
    if conflicts:
        name = conflicts[0]
        raise DpError(f"{FIXED[name]} {_words(getattr(req, name))}: this run was started with "
                      f"{_words(stored[name])}; --resume continues it with its own options (leave "
                      f"{FIXED[name].split('/')[0]} out), or start another run in another folder (-o)", req.out)
    changes = {name: stored[name] for name in (*FIXED, *FREE) if name in stored and name not in given}
    if "data" in changes and changes["data"] != "synth":
        changes["data"] = str(changes["data"])
    return replace(req, **changes)


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return "(default)" if value is None else str(value)


class RunDone(DpError):
    """A resumed run has already reached its steps (not a failure: exit code 0)."""

    exit_code = 0


def check_not_done(out: Path, done_step: int, steps: int) -> None:
    """Raise :class:`RunDone` when the checkpoint in ``out`` is at or past ``steps``."""
    if done_step >= steps:
        raise RunDone(f"done: trained to step {done_step} of {steps}; to train further, resume with a "
                      f"larger --steps (e.g. --steps {max(2 * steps, done_step + 1)})", out)


def checkpoint_step(out: Path) -> int | None:
    """The step the checkpoint in ``out`` holds (None without a readable one)."""
    import torch

    try:
        state = torch.load(Path(out) / "checkpoint.pt", map_location="cpu", weights_only=False)
        return int(state["step"])
    except Exception:
        return None
