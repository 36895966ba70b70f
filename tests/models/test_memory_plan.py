"""Tile planning under the 2 GiB budget and the allocator settings of the CLI."""
from __future__ import annotations

import sys

import pytest

from dpcli.api import plan_tiles, tile_budget_px
from dpcli.device import release_freed_memory, retain_freed_memory


def test_full_frame_buffers_shrink_the_tiles() -> None:
    small = tile_budget_px(64, "fp32")
    big_frame = tile_budget_px(64, "fp32", frame_bytes=4 * 6000 * 4000 * 10)  # 24 MP pair + output
    assert 0 < big_frame < small / 2
    assert tile_budget_px(64, "bf16") > small  # bf16 activations take less memory
    h, w = 4000, 6000
    tiles = plan_tiles(h, w, big_frame, overlap=64)
    th, tw = tiles if isinstance(tiles, tuple) else (tiles, tiles)
    assert 0 < th * tw <= big_frame  # never above the budget


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_allocator_settings_take_effect_and_can_be_refused(monkeypatch) -> None:
    monkeypatch.setenv("DPDEBLUR_MALLOC", "system")
    assert retain_freed_memory() is False
    monkeypatch.delenv("DPDEBLUR_MALLOC")
    if "glibc" not in " ".join(__import__("platform").libc_ver()):
        pytest.skip("not glibc")
    assert retain_freed_memory() is True
    release_freed_memory()  # must not raise
