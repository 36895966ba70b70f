"""Loop control shared by the optimised zero-shot stages: plateau early stopping, the time budget
(deadlines), and a per-stage log."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

__all__ = ["Plateau", "StageLog", "past"]


def past(deadline: float | None) -> bool:
    """True once ``time.perf_counter()`` has passed ``deadline`` (None: no deadline)."""
    return deadline is not None and time.perf_counter() > deadline


class Plateau:
    """Early stop when the smoothed loss has not improved by ``tol`` (relative) for ``patience`` steps."""

    def __init__(self, patience: int, tol: float) -> None:
        self.patience, self.tol = patience, tol
        self.best = math.inf
        self.ema: float | None = None
        self.since = 0

    def step(self, loss: float) -> bool:
        self.ema = loss if self.ema is None else 0.9 * self.ema + 0.1 * loss
        if self.ema < self.best * (1 - self.tol):
            self.best, self.since = self.ema, 0
        else:
            self.since += 1
        return self.since >= self.patience


@dataclass
class StageLog:
    """One optimised stage's record: loss per step, steps done, seconds, why it stopped
    ("iterations", "plateau" or "time budget")."""

    losses: list[float] = field(default_factory=list)
    iters: int = 0
    seconds: float = 0.0
    stopped: str = "iterations"

    def record(self, value: float, stop: "Plateau", deadline: float | None) -> bool:
        """Log one step's loss; True when the loop should end (plateau or time budget)."""
        self.losses.append(value)
        self.iters += 1
        if stop.step(value):
            self.stopped = "plateau"
            return True
        if past(deadline):
            self.stopped = "time budget"
            return True
        return False
