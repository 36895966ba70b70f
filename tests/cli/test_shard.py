"""Issue 17 item 5: a folder run split over processes (torchrun: RANK / WORLD_SIZE); rank 0 reports all."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dpcli.cli.shard import Shard

JOB = Path(__file__).with_name("_shard_job.py")


def _inputs(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        (folder / f"item{i:02d}.txt").write_text(str(i))


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]), **extra)
    return env


def _check(out: Path, stdout: str, n: int, world: int) -> None:
    summary = json.loads(stdout)
    names = [r["name"] for r in summary["items"]]
    assert names == [f"item{i:02d}" for i in range(n)]  # every item once, in input order
    assert summary["counts"] == {"ok": n, "skipped": 0, "failed": 0}
    ranks = {r["name"]: int(r["metrics"]["rank"]) for r in summary["items"]}
    assert set(ranks.values()) == set(range(world))  # every process took a share ...
    for name, rank in ranks.items():  # ... and wrote what it reported
        assert (out / f"{name}.out").read_text().strip() == f"rank {rank}"


def test_two_processes_share_a_folder_and_rank_0_reports_all(tmp_path):
    _inputs(tmp_path / "in", 7)
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, str(JOB), str(tmp_path / "in"), str(out)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env(RANK=str(rank), WORLD_SIZE="2", TORCHELASTIC_RUN_ID="test-run"))
             for rank in (0, 1)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[1][0] == ""  # only rank 0 prints the summary
    _check(out, results[0][0], 7, 2)
    # a second launch finds everything done, whichever rank looks
    again = subprocess.run([sys.executable, str(JOB), str(tmp_path / "in"), str(out)], text=True,
                           capture_output=True, env=_env(), timeout=120)
    assert json.loads(again.stdout)["counts"] == {"ok": 0, "skipped": 7, "failed": 0}


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def test_torchrun_two_processes(tmp_path):
    _inputs(tmp_path / "in", 5)
    out = tmp_path / "out"
    res = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", "2", str(JOB), str(tmp_path / "in"),
                          str(out)], text=True, capture_output=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    _check(out, res.stdout, 5, 2)


def test_shard_takes_every_world_th_item_and_checks_the_env(monkeypatch):
    assert Shard(1, 3).take(list(range(8))) == [1, 4, 7]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    from dpcli.errors import DpError

    with pytest.raises(DpError, match="RANK 2 / WORLD_SIZE 2"):
        Shard.from_env()
