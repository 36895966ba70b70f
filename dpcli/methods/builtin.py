"""Training-free methods: zero-shot MPI stage 1 and the classical joint deconvolution."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dpcli.methods.base import Method, register_method

_MEASURED = Path(__file__).with_name("measured.json")


def _measured() -> dict:
    try:
        return json.loads(_MEASURED.read_text())
    except (OSError, ValueError):
        return {}


def measured_gains(name: str) -> dict[str, float]:
    """domain -> measured gain (dB) of a built-in method, from ``measured.json``."""
    return {k: float(v) for k, v in _measured().get(name, {}).items()}


def broad_figure(name: str, domain: str) -> dict | None:
    """A method's figures on the broad benchmark's tuning half for ``domain`` (``measured.json``
    "broad", from ``benchmarks/bench_broad.py --half tune --write``), or None."""
    return _measured().get("broad", {}).get(name, {}).get(domain)


def broad_trust(name: str, domain: str) -> bool | None:
    """Whether a method (any: built-in, composite or shipped weights) kept its promise on the tuning
    half of the broad benchmark for ``domain`` (``measured.json`` "broad", written by
    ``benchmarks/bench_broad.py --half tune --write``): no blurred photo or rendered pair came back
    below its input, and sharp photos came back unchanged (:func:`dpcli.metrics.spares_sharp`).
    None where it was not measured."""
    from dpcli.metrics.image import spares_sharp

    fig = broad_figure(name, domain)
    if fig is None:
        return None
    sharp = "sharp_mean_db" not in fig or spares_sharp(fig["sharp_mean_db"], fig["sharp_min_db"])
    return fig.get("below_input", 0) == 0 and sharp


@register_method("zeroshot")
class ZeroShotStage1(Method):
    """Zero-shot MPI deblurring (thesis 004), stage 1: every layer solved in closed form, picked
    per pixel by its L/R reblur residual; no training data, seconds per photo."""

    name = "zeroshot"
    needs_pair = True
    space = "linear"
    summary = "zero-shot MPI, stage 1 (training-free, any DP camera; the defocus map is its layer choice)"

    def __init__(self, config=None, device: str = "cpu", precision: str = "fp32", progress=None, **_: Any) -> None:
        from dpcli.zeroshot import make_config

        self.fixed_focus = config is not None  # a caller's config keeps its own focus side
        self.config = config or make_config("fast", output_stage="init")
        from dpcli.device import resolve_precision

        # --precision auto: fp32 (the stage's bf16 layer maps were never measured through run)
        self.device, self.precision, self.progress = device, resolve_precision(precision, device), progress
        self.measured = measured_gains(self.name)
        self.result = None  # the last ZeroShotResult (the zeroshot command writes its extras)

    def _deblur(self, left, right, *, kernels, defocus, focus):
        from dpcli.zeroshot import zeroshot_deblur

        cfg = self.config.with_(focus=None if self.fixed_focus else focus, device=self.device,
                                precision=self.precision)
        measured = None if kernels is None else tuple(np.asarray(k, np.float32) for k in kernels)
        res = zeroshot_deblur(left, right, cfg, measured_kernels=measured, progress=self.progress)
        self.result = res
        info = {"timings": dict(res.timings), "output_stage": res.info.get("output_stage", ""),
                "defocus_source": res.info.get("defocus_source", ""), "kernels": "measured" if measured else "parametric"}
        return np.clip(res.aif, 0, None), res.defocus, info


@register_method("classical")
class Classical(Method):
    """Joint L/R regularised deconvolution with a per-patch radius from the classical defocus map."""

    name = "classical"
    needs_pair = True
    space = "linear"
    summary = "classical joint L/R deconvolution (training-free; map from the L/R kernel symmetry)"

    def __init__(self, min_radius: float | None = None, max_radius: float | None = None, **_: Any) -> None:
        self.measured = measured_gains(self.name)
        self.radius_range = {k: v for k, v in (("min_radius", min_radius), ("max_radius", max_radius))
                             if v is not None}

    def _deblur(self, left, right, *, kernels, defocus, focus):
        from dpcli.classical import deblur_pair_classical, estimate_defocus_classical

        image = deblur_pair_classical(left, right, kernels, srgb=False)
        dmap = None
        if defocus:
            dmap, _ = estimate_defocus_classical(left, right, srgb=False, **self.radius_range)
        return image, dmap, {"kernels": "measured" if kernels is not None else "parametric"}

    def defocus_map(self, left, right, *, srgb: bool, kernels=None, focus: str = "front") -> np.ndarray:
        return self.defocus_with_confidence(left, right, srgb=srgb)[0]

    def defocus_with_confidence(self, left, right, *, srgb: bool):
        """(radius, confidence) of the classical estimator (``defocus-map --confidence``)."""
        from dpcli.classical import estimate_defocus_classical

        return estimate_defocus_classical(left, right, srgb=srgb, **self.radius_range)


@register_method("deconv_single")
class BlindDeconvSingle(Method):
    """One photo deconvolved by the uniform disc blur read off its own spectrum, where the spectrum
    shows one (:func:`dpcli.classical.blind.deblur_single_classical`); unchanged where it does not."""

    name = "deconv_single"
    needs_pair = False
    space = "linear"
    blur_model = "uniform disc"
    summary = ("single-image blind deconvolution (training-free): a uniform disc blur measured from the "
               "photo's spectrum, undone with a total-variation prior; photos without measured blur come back unchanged")

    def __init__(self, config=None, **_: Any) -> None:
        self.config = config
        self.measured = measured_gains(self.name)

    def _deblur(self, left, right, *, kernels, defocus, focus):
        import torch

        from dpcli.classical.blind import deblur_single_classical

        x = torch.from_numpy(np.ascontiguousarray(left, np.float32))
        out, est = deblur_single_classical(x, self.config)
        acted = out is not x
        info = {"blur_radius_px": round(est.radius, 2) if acted else 0.0, "blur_confidence": round(est.confidence, 2),
                "blur_uniformity": round(est.uniformity, 2)}
        return (out.numpy() if acted else left), None, info
