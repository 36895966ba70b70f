"""The process heap settings (dpcli/heap.py): each call says whether it took effect and never fails.

Run in a child process: retaining freed memory is process-wide, and the test process should keep
the allocator it started with."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dpcli import heap

ROOT = Path(__file__).resolve().parents[1]


def _child(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    return out.stdout.strip()


@pytest.mark.skipif(heap._glibc() is None, reason="glibc only (mallopt, malloc_trim)")
def test_retain_takes_effect_on_glibc_and_release_runs_after_it():
    code = ("from dpcli import heap; ok = heap.retain_freed_memory(); b = bytearray(64 << 20); del b; "
            "print(ok, heap.release_freed_memory())")
    assert _child(code) == "True None"


def test_the_opt_out_leaves_the_heap_alone():
    code = "from dpcli import heap; print(heap.retain_freed_memory())"
    assert _child(code, DPDEBLUR_MALLOC="system") == "False"
    assert _child(code, DPDEBLUR_MALLOC="SYSTEM") == "False"  # the value is read case-blind


def test_without_glibc_both_are_no_ops(monkeypatch):
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert heap.retain_freed_memory() is False
    assert heap.release_freed_memory() is None


def test_no_torch_is_imported():
    """The CLI sets the heap up before anything heavy is imported."""
    assert _child("import sys; from dpcli import heap; print('torch' in sys.modules)") == "False"
