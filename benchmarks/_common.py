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


def perceptual_options(model: str) -> tuple[dict, str | None]:
    """(stage options, note) for training ``model``: DefocusGAN's VGG perceptual loss needs the
    converted VGG16 weights (``dpdeblur convert-lpips``); without them it trains without that loss
    and the note says why, so a fresh machine runs the scripts (and their smoke tests) as is."""
    from dpcli.metrics.lpips import weights_available, weights_path

    if model != "defocusgan" or weights_available("vgg"):
        return {}, None
    return {"perceptual": False}, (f"perceptual loss off: no converted VGG16 weights at {weights_path('vgg')} "
                                   "(`dpdeblur convert-lpips` makes them)")
