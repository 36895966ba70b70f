"""Device, precision and threads (dpcli/device.py): what --device/--precision/--threads resolve to."""
from __future__ import annotations

import pytest
import torch

from dpcli.device import _cpu_flags, autocast, native_bf16, precision_dtype, resolve_device, resolve_precision, set_threads
from dpcli.errors import DpError


def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_an_absent_or_unknown_device_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DpError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(DpError, match="no MPS device"):
        resolve_device("mps")
    with pytest.raises(DpError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_precisions_and_their_dtypes():
    assert [precision_dtype(p) for p in ("fp32", "bf16", "fp16")] == [torch.float32, torch.bfloat16, torch.float16]
    with pytest.raises(DpError, match="unknown precision"):
        precision_dtype("int8")


def test_autocast_bf16_on_cpu_runs_matmuls_in_bf16_and_fp32_leaves_them():
    a = torch.rand(8, 8)
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (a @ a).dtype == torch.float32
    with pytest.raises(DpError, match="fp16 is for GPUs"):
        with autocast(torch.device("cpu"), "fp16"):
            pass


def test_set_threads_sets_a_count_and_zero_or_none_keeps_it():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(0)
        set_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_native_bf16_reads_the_cpu_flags_and_the_environment_overrides_them(monkeypatch, tmp_path):
    monkeypatch.setenv("DPDEBLUR_BF16", "1")
    assert native_bf16() is True
    monkeypatch.setenv("DPDEBLUR_BF16", "0")
    assert native_bf16() is False
    monkeypatch.delenv("DPDEBLUR_BF16")
    import builtins

    real_open = builtins.open
    for flags, want in (("fpu sse2 avx2 avx512f", False), ("fpu avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open", lambda f, *a, info=info, **k: real_open(info if f == "/proc/cpuinfo" else f, *a, **k))
        _cpu_flags.cache_clear()
        assert native_bf16() is want
    _cpu_flags.cache_clear()


def test_auto_precision_is_bf16_only_for_a_harmless_network_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("DPDEBLUR_BF16", "1")
    assert resolve_precision("auto", "cpu", harmless=True) == "bf16"
    assert resolve_precision("auto", "auto", harmless=True) == "bf16"
    assert resolve_precision("auto", "cpu", harmless=False) == "fp32"
    assert resolve_precision("auto", torch.device("cuda"), harmless=True) == "fp32"  # never measured on a GPU
    monkeypatch.setenv("DPDEBLUR_BF16", "0")
    assert resolve_precision("auto", "cpu", harmless=True) == "fp32"
    for given in ("fp32", "bf16", "fp16"):
        assert resolve_precision(given, "cpu", harmless=False) == given
