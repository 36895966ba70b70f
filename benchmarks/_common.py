"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is
on ``sys.path``)."""
from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_gib() -> float:
    """Peak resident memory of this process (Linux VmHWM, which ``clear_refs`` can reset; else ru_maxrss)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # KiB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
