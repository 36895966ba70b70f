"""Named training configurations: ``test`` (seconds, CI), ``small`` (CPU-trainable), ``paper``.

Each family's training module registers its stages with their presets (stage options and loop
defaults; :mod:`dpcli.train.stages`). Schedules written in *epochs* (the papers' unit) are turned
into steps once the dataset size is known (:func:`epochs_to_steps`).
"""
from __future__ import annotations

from typing import Any

from dpcli.train.stages import preset

__all__ = ["preset", "epochs_to_steps"]


def epochs_to_steps(value: Any, steps_per_epoch: int) -> Any:
    """``"5e"`` -> 5 epochs in steps; numbers pass through."""
    if isinstance(value, str) and value.endswith("e"):
        return max(1, int(round(float(value[:-1]) * steps_per_epoch)))
    return value
