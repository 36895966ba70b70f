"""Issue 26 item 5: a run folder is self-contained. `train --resume` continues with the options the
run was started with (recorded in the folder), refuses a conflicting one in one line, and says when
the run is done and how to train further, instead of crashing on a state dict or doing nothing."""
from __future__ import annotations

import json

import pytest

TINY = ["--config", "test", "--val-count", "1", "--synth-length", "4", "--crop", "32", "--batch-size", "1",
        "--threads", "1", "-q"]


@pytest.fixture
def run(dpdeblur, tmp_path):
    folder = tmp_path / "run"
    res = dpdeblur("train", "bambnet", "--data", "synth", "--steps", 2, "-o", folder, *TINY)
    assert res.code == 0, res.err
    return folder


def test_resume_needs_only_the_folder_and_says_when_done(dpdeblur, run):
    assert json.loads((run / "options.json").read_text())["config"] == "test"
    done = dpdeblur("train", "bambnet", "-o", run, "--resume", "--threads", 1)
    assert done.code == 0 and len(done.err_lines) == 1, done.err
    assert "step 2 of 2" in done.err and "--steps" in done.err and "error" not in done.err
    further = dpdeblur("train", "bambnet", "-o", run, "--resume", "--steps", 3, "--threads", 1, "-q")
    assert further.code == 0, further.err
    assert "step 3" in further.err and "Missing key" not in further.err
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 3
    again = dpdeblur("train", "bambnet", "-o", run, "--resume", "--threads", 1)
    assert again.code == 0 and "step 3 of 3" in again.err  # the record follows the larger --steps


@pytest.mark.parametrize("flag, value, words", [("--config", "small", "test"), ("--data", "DPDD", "synth"),
                                                ("--synth-camera", "phone", "dslr")])
def test_resume_refuses_a_conflicting_option_in_one_line(dpdeblur, run, flag, value, words):
    res = dpdeblur("train", "bambnet", "-o", run, "--resume", flag, value, "--threads", 1)
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    assert flag in res.err and words in res.err and "state_dict" not in res.err


def test_a_folder_without_a_record_names_the_options_not_the_state_dict(dpdeblur, run):
    (run / "options.json").unlink()
    (run / "run.json").unlink()
    res = dpdeblur("train", "bambnet", "-o", run, "--resume", "--config", "small", "--steps", 4, "--threads", 1)
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    assert "state_dict" not in res.err and "Missing key" not in res.err and "--config" in res.err
