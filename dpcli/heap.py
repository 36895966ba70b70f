"""The process heap (glibc): keep freed blocks for reuse, or hand them back. No torch here, so the
command line sets it up before anything heavy is imported."""
from __future__ import annotations

import functools

__all__ = ["retain_freed_memory", "release_freed_memory"]


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
