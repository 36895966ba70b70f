"""Issue 17 item 1: `train -o DIR` into a folder that holds a run never restarts it silently."""
from __future__ import annotations

import json

import pytest

from dpcli.errors import DpError
from dpcli.train.runner import check_run_folder


def _fake_run(folder, step=40):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoint.pt").write_bytes(b"weights")
    (folder / "metrics.jsonl").write_text(json.dumps({"step": step, "loss": 0.1}) + "\n")
    (folder / "train.log").write_text("step 40\n")


def test_a_folder_holding_a_run_is_refused_in_one_line_naming_it(dpdeblur, tmp_path):
    run = tmp_path / "runs" / "t"
    _fake_run(run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    res = dpdeblur("train", "bambnet", "--data", "synth", "--config", "test", "-o", run)
    assert res.code == 2
    assert len(res.err_lines) == 1, res.err
    assert str(run) in res.err and "step 40" in res.err and "--resume" in res.err and "--overwrite" in res.err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing touched


def test_resume_needs_a_checkpoint_and_contradicts_overwrite(tmp_path):
    with pytest.raises(DpError, match="nothing to resume"):
        check_run_folder(tmp_path / "empty", resume=True, overwrite=False)
    _fake_run(tmp_path / "r")
    check_run_folder(tmp_path / "r", resume=True, overwrite=False)  # continues: allowed
    with pytest.raises(DpError, match="contradict"):
        check_run_folder(tmp_path / "r", resume=True, overwrite=True)


def test_overwrite_starts_over_removing_only_the_run_files(tmp_path):
    run = tmp_path / "r"
    _fake_run(run)
    (run / "notes.txt").write_text("mine")
    check_run_folder(run, resume=False, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


def test_a_fresh_or_unrelated_folder_is_fine(tmp_path):
    check_run_folder(tmp_path / "new", resume=False, overwrite=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "photo.png").write_bytes(b"x")
    check_run_folder(tmp_path / "other", resume=False, overwrite=False)
