"""Device, precision and thread selection shared by every command (``--device``, ``--precision``)."""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Literal

import torch

from dpcli.errors import DpError
from dpcli.heap import release_freed_memory, retain_freed_memory  # noqa: F401  (re-exported)

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that multiply bf16 in hardware


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DpError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DpError("--device mps: no MPS device is available (use --device auto or cpu)")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DpError(f"--device {name}: unknown device (auto, cpu, cuda, cuda:N, mps)")
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """Limit intra-op threads (``--threads``); None or 0 keeps torch's default."""
    if threads:
        torch.set_num_threads(int(threads))


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX: a flag of
    :data:`BF16_FLAGS` in ``/proc/cpuinfo``; False where that file is absent). ``DPDEBLUR_BF16=1``
    or ``0`` says so instead (tests, or a CPU whose flags are hidden)."""
    import os

    said = os.environ.get("DPDEBLUR_BF16")
    if said in ("0", "1"):
        return said == "1"
    return any(flag in _cpu_flags() for flag in BF16_FLAGS)


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The first CPU's flags in ``/proc/cpuinfo`` (read once; empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def resolve_precision(precision: str, device: torch.device | str, harmless: bool = False) -> str:
    """``--precision auto`` made concrete: bf16 on a CPU with :func:`native_bf16` for a network
    whose bf16 loss was measured negligible (``harmless``; dpcli.methods.network.bf16_harmless),
    else fp32 (GPUs included: no bf16 loss has been measured there). Other precisions unchanged."""
    if precision != "auto":
        return precision
    kind = (resolve_device(device) if isinstance(device, str) else device).type
    return "bf16" if harmless and kind == "cpu" and native_bf16() else "fp32"


def precision_dtype(precision: str) -> torch.dtype:
    if precision not in _DTYPES:
        raise DpError(f"--precision {precision}: unknown precision (fp32, bf16, fp16)")
    return _DTYPES[precision]


@contextlib.contextmanager
def autocast(device: torch.device, precision: str = "fp32") -> Iterator[None]:
    """Mixed-precision context: bf16 on CPU runs on AMX/AVX-512 units, fp16 on CUDA.

    fp16 on CPU is refused: it is slow there and loses range; bf16 is the CPU choice.
    """
    dtype = precision_dtype(precision)
    if dtype == torch.float32:
        yield
        return
    if device.type == "cpu" and dtype == torch.float16:
        raise DpError("--precision fp16 is for GPUs; use bf16 on CPU")
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
