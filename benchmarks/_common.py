"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is
on ``sys.path``)."""
from __future__ import annotations

import os
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


def dev_data() -> Path:
    """The shared folder with the real dev scenes (``DPDEBLUR_SHARED``, default ../shared)."""
    return Path(os.environ.get("DPDEBLUR_SHARED", "../shared"))


def named_method(method: str):
    """(options, chooser) of the per-item pipeline ``run`` uses, with ``--method NAME`` on the CPU."""
    from dpcli.pipeline import MethodChooser, Options

    options = Options(method=method, runtime={"device": "cpu"})
    return options, MethodChooser.of(options)
