"""Exporting training results (dpcli/train/export.py): checkpoint averaging, compact states."""
from __future__ import annotations

import pytest
import torch

from tests.train.conftest import tiny_request


def test_checkpoint_average_is_the_mean_of_the_snapshots(tmp_path):
    from dpcli.errors import DpError
    from dpcli.train.export import average_checkpoints, main

    paths = []
    for i, value in enumerate((1.0, 2.0, 6.0)):
        state = {"step": 100 * (i + 1), "stage": "s", "arch": "a", "extra": {"t": i},
                 "nets": {"net": {"w": torch.full((2, 2), value), "n": torch.tensor(i)}}}
        paths.append(tmp_path / f"c{i}.pt")
        torch.save(state, paths[-1])
    main([str(p) for p in paths] + ["-o", str(tmp_path / "avg.pt")])
    avg = torch.load(tmp_path / "avg.pt", weights_only=False)
    assert torch.equal(avg["nets"]["net"]["w"], torch.full((2, 2), 3.0))
    assert int(avg["nets"]["net"]["n"]) == 2 and avg["step"] == 300 and avg["extra"] == {"t": 2}  # the last's
    assert avg["averaged_steps"] == [100, 200, 300]
    torch.save({"step": 1, "stage": "other", "arch": "a", "nets": {}}, tmp_path / "x.pt")
    with pytest.raises(DpError, match="different stages"):
        average_checkpoints([paths[0], tmp_path / "x.pt"], tmp_path / "bad.pt")


def test_compact_state_from_a_run_checkpoint(tiny_dpdd, tmp_path):
    from dpcli.train.export import compact_from_checkpoint, load_compact_state
    from dpcli.train.runner import run_training

    _, trainer, _ = run_training(tiny_request(tiny_dpdd, tmp_path / "r", steps=4))
    path = compact_from_checkpoint(tmp_path / "r" / "checkpoint.pt", tmp_path / "compact.pt")
    assert path.stat().st_size < 0.6 * (tmp_path / "r" / "checkpoint.pt").stat().st_size  # fp16, no Adam moments
    assert load_compact_state(trainer, path) == 4
    assert trainer.search.thresholds == torch.load(path, weights_only=False)["extra"]["search"]["thresholds"]
