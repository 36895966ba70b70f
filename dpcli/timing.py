"""Where the time goes: named stages timed (wall and CPU seconds) and their peak memory, when asked.

The stages of one item (read, orientation, each network pass, the gates, encode, write) open a
:func:`stage`; it costs one global lookup unless a :func:`recording` is active, so the path ``run``
takes is the path the benchmark times (``benchmarks/bench_infer.py stages``). No torch here.

Peak memory: the process's peak resident set (Linux ``VmHWM``) is reset when an outermost stage
opens and read when each stage closes: an outermost stage reports the peak reached while it ran, a
nested one the peak since its outermost stage opened (the first nested stage whose figure jumps is
the one that raised it).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

__all__ = ["Stage", "Recording", "recording", "stage", "peak_rss_gib", "reset_peak_rss"]


@dataclass
class Stage:
    """One named stage's totals over every time it ran."""

    name: str
    depth: int
    calls: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_gib: float = 0.0  # outermost: the peak while it ran; nested: the peak since its outermost opened


@dataclass
class Recording:
    """The stages in the order they first ran."""

    stages: dict[str, Stage] = field(default_factory=dict)
    _depth: int = 0

    def rows(self) -> list[Stage]:
        return list(self.stages.values())


_ACTIVE: Recording | None = None


def peak_rss_gib() -> float:
    """The process's peak resident set since start or the last :func:`reset_peak_rss`, in GiB
    (Linux ``VmHWM``; elsewhere ``ru_maxrss``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark to the present resident set (Linux ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    """Record every :func:`stage` run inside this block (not thread-safe: one recording at a time)."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, Recording()
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = previous


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` when a :func:`recording` is active; otherwise do nothing."""
    rec = _ACTIVE
    if rec is None:
        yield
        return
    row = rec.stages.setdefault(name, Stage(name, rec._depth))
    outermost = rec._depth == 0
    if outermost:
        reset_peak_rss()
    rec._depth += 1
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        row.wall_s += time.perf_counter() - wall
        row.cpu_s += time.process_time() - cpu
        row.calls += 1
        rec._depth -= 1
        row.peak_gib = max(row.peak_gib, peak_rss_gib())
