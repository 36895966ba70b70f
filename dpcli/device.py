"""Device, precision and thread selection shared by every command (``--device``, ``--precision``)."""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Literal

import torch

from dpcli.errors import DpError

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library when it is glibc on Linux (mallopt, malloc_trim), else None."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - musl and others have neither
    except (OSError, AttributeError):
        return None
    return libc


def retain_freed_memory() -> bool:
    """Keep freed blocks in the process heap instead of returning them to the kernel (glibc only).

    Conv activations are tens to hundreds of MB; glibc serves each from a fresh mmap and unmaps it
    on free, so every layer pays page faults for zeroed pages again (about a third of the CPU time
    of a tiled BaMBNet pass went to the kernel). Reusing heap blocks cut that pass from 63 to 47
    CPU-s (fp32). Process-wide, so only the CLI and benchmarks call it; ``DPDEBLUR_MALLOC=system``
    opts out. Returns True when the setting took effect.
    """
    import os

    libc = _glibc()
    if os.environ.get("DPDEBLUR_MALLOC", "").lower() == "system" or libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the kernel (glibc ``malloc_trim``): called before a
    tiled pass, so memory retained from loading and converting the inputs does not add to its
    peak; the pass's own buffers are then faulted in once and reused tile after tile."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def set_threads(threads: int | None) -> None:
    """Limit intra-op threads (``--threads``); None or 0 keeps torch's default."""
    if threads:
        torch.set_num_threads(int(threads))


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
