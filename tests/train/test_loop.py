"""The training loop: exact resume, Ctrl-C checkpoints, time budget, export, CLI, DDP with gloo."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from dpcli.train.runner import TrainRequest, run_training
from tests.train.conftest import tiny_request


_req = tiny_request


def test_resume_continues_exactly(tiny_dpdd, tmp_path):
    """8 steps straight == 4 steps, stop, --resume to 8 (same losses, thresholds and weights)."""
    full, _, _ = run_training(_req(tiny_dpdd, tmp_path / "a", steps=8))
    run_training(_req(tiny_dpdd, tmp_path / "b", steps=4))
    resumed, trainer, _ = run_training(_req(tiny_dpdd, tmp_path / "b", steps=8, resume=True))
    a = [h["loss"] for h in full.history[4:]]
    b = [h["loss"] for h in resumed.history]
    assert len(b) == 4 and max(abs(x - y) for x, y in zip(a, b)) < 1e-6
    assert full.history[3]["r2"] == pytest.approx(resumed_thresholds(tmp_path / "b")[1])  # step-4 search kept
    sa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["nets"]["deblur"]
    sb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["nets"]["deblur"]
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)
    log = (tmp_path / "b" / "train.log").read_text()
    assert "resumed bambnet-deblur from step 4" in log and "val_psnr" in log


def resumed_thresholds(out: Path) -> list[float]:
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    return state["extra"]["search"]["history"][0]


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tiny_dpdd, tmp_path, monkeypatch):
    from dpcli.train import bambnet

    original = bambnet.BaMBNetDeblurTrainer.train_step

    def interrupting(self, batch, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, batch, step)

    monkeypatch.setattr(bambnet.BaMBNetDeblurTrainer, "train_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_training(_req(tiny_dpdd, tmp_path / "c", steps=8))
    assert torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=False)["step"] == 3
    monkeypatch.setattr(bambnet.BaMBNetDeblurTrainer, "train_step", original)
    result, _, _ = run_training(_req(tiny_dpdd, tmp_path / "c", steps=8, resume=True))
    assert result.steps_done == 5 and result.last_step == 8


def test_time_budget_stops_with_checkpoint(tiny_dpdd, tmp_path):
    result, _, _ = run_training(_req(tiny_dpdd, tmp_path / "t", steps=100, time_budget=0.0))
    assert result.stopped == "time-budget" and result.last_step == 1
    assert torch.load(tmp_path / "t" / "checkpoint.pt", weights_only=False)["step"] == 1
    run = json.loads((tmp_path / "t" / "run.json").read_text())
    assert run["stopped"] == "time-budget" and "val_psnr" in run["last_val"]


def test_bf16_autocast_trains(tiny_dpdd, tmp_path):
    result, _, _ = run_training(_req(tiny_dpdd, tmp_path / "bf", steps=3, precision="bf16"))
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)


def test_cli_train_export_and_load(tiny_dpdd, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dpcli.cli import app
    from dpcli.models import create_model

    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(weights))
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["train", "bambnet", "--data", str(tiny_dpdd), "--config", "test", "--steps", "3",
                                   "--output", str(out), "--coc-source", "gt", "--val-count", "2", "--quiet",
                                   "--export", "tiny", "--save-state", str(tmp_path / "state.pt")])
    assert res.exit_code == 0, res.output
    manifest = json.loads((weights / "manifest.json").read_text())
    entry = next(e for e in manifest["weights"] if e["name"] == "bambnet_deblur_test.tiny")
    assert "val_psnr" in entry["metrics"] and json.loads(entry["recipe"])["steps_done"] == 3
    model = create_model("bambnet_deblur_test.tiny")  # sha256-checked fp16 file through the registry
    state = torch.load(out / "checkpoint.pt", weights_only=False)["nets"]["deblur"]
    assert all(torch.allclose(model.state_dict()[k], state[k].half().float()) for k in state)
    assert (tmp_path / "state.pt").stat().st_size < (out / "checkpoint.pt").stat().st_size
    # a later session continues from the compact state: weights, thresholds and the step count
    warm = CliRunner().invoke(app, ["train", "bambnet", "--data", str(tiny_dpdd), "--config", "test", "--steps", "5",
                                    "--output", str(tmp_path / "warm"), "--coc-source", "gt", "--val-count", "2",
                                    "--quiet", "--warm-start", str(tmp_path / "state.pt")])
    assert warm.exit_code == 0, warm.output
    assert "steps 3->5" in (tmp_path / "warm" / "train.log").read_text()
    bad = CliRunner().invoke(app, ["train", "bambnet", "--stage", "nope", "--data", str(tiny_dpdd)])
    assert bad.exit_code != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result, trainer, _ = run_training(_req(Path(data), Path(out), steps=4, val_count=2))
    flat = torch.cat([p.detach().flatten() for p in trainer.nets["deblur"].parameters()])
    torch.save({"params": flat, "history": result.history}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_two_processes_gloo(tiny_dpdd, tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "ddp"
    # fork: the children inherit the imported modules (spawn would re-import torch twice, ~15 s)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(tiny_dpdd), str(out)), nprocs=2, join=True,
                       start_method="fork")
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert torch.allclose(r0["params"], r1["params"])  # gradients were averaged: replicas stay equal
    assert r0["history"][0]["loss"] != r1["history"][0]["loss"]  # ... while each saw its own shard
    assert (out / "checkpoint.pt").exists() and "x 2" in (out / "train.log").read_text()


def test_sigterm_also_checkpoints(tiny_dpdd, tmp_path, monkeypatch):
    """A background job stopped with SIGTERM (or SIGINT ignored by its shell) still saves its state."""
    import signal

    from dpcli.train import bambnet

    original = bambnet.BaMBNetDeblurTrainer.train_step

    def terminating(self, batch, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch, step)

    monkeypatch.setattr(bambnet.BaMBNetDeblurTrainer, "train_step", terminating)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_training(_req(tiny_dpdd, tmp_path / "s", steps=8))
    assert torch.load(tmp_path / "s" / "checkpoint.pt", weights_only=False)["step"] in (2, 3)
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_stage_two_uses_the_stage_one_checkpoint(tiny_dpdd, tmp_path):
    """Paper pipelines: BaMBNet deblur masks from the trained COC net; DefocusGAN guided by its map net."""
    run_training(TrainRequest(model="bambnet", stage="coc", data=str(tiny_dpdd), config="test", steps=2,
                              out=tmp_path / "coc", val_count=1, quiet=True))
    _, deblur, _ = run_training(TrainRequest(model="bambnet", stage="deblur", data=str(tiny_dpdd), config="test",
                                             steps=2, out=tmp_path / "deblur", val_count=1, quiet=True,
                                             stage_options={"coc_weights": tmp_path / "coc" / "checkpoint.pt"}))
    coc_state = torch.load(tmp_path / "coc" / "checkpoint.pt", weights_only=False)["nets"]["coc"]
    assert deblur.coc_net is not None
    assert all(torch.equal(deblur.coc_net.state_dict()[k], coc_state[k]) for k in coc_state)
    run_training(TrainRequest(model="defocusgan", stage="defocus", data=str(tiny_dpdd), config="test", steps=2,
                              out=tmp_path / "dm", val_count=1, quiet=True))
    _, gen, _ = run_training(TrainRequest(model="defocusgan", stage="generator", data=str(tiny_dpdd), config="test",
                                          steps=2, out=tmp_path / "gan", val_count=1, quiet=True,
                                          stage_options={"defocus_weights": tmp_path / "dm" / "checkpoint.pt",
                                                         "perceptual": False}))
    assert gen.defocus_net is not None and gen.dp  # maps from DP views: DP augmentation rules stay on


def test_kept_snapshots_are_the_weights_of_their_steps_and_average(tiny_dpdd, tmp_path):
    """--keep-every 2: snapshots at steps 2 and 4, the step-4 one equal (fp16) to the final weights;
    their weight average is loadable as a candidate (evaluate reads its architecture)."""
    from dpcli.train.evaluate import load_candidate
    from dpcli.train.export import average_checkpoints

    _, trainer, _ = run_training(_req(tiny_dpdd, tmp_path / "k", steps=4, keep_every=2))
    snaps = sorted((tmp_path / "k" / "snaps").glob("*.pt"))
    assert [p.name for p in snaps] == ["step_000002.pt", "step_000004.pt"]
    last = torch.load(snaps[-1], weights_only=False)
    final = trainer.nets["deblur"].state_dict()
    assert last["step"] == 4 and all(torch.allclose(last["nets"]["deblur"][k].float(), final[k].float(), atol=2e-3,
                                                    rtol=1e-2) for k in final if final[k].is_floating_point())
    first = torch.load(snaps[0], weights_only=False)["nets"]["deblur"]
    key = next(k for k in final if final[k].is_floating_point() and final[k].ndim == 4)
    assert not torch.equal(first[key], last["nets"]["deblur"][key])  # two different states kept
    avg = average_checkpoints(snaps, tmp_path / "avg.pt")
    net, arch, task = load_candidate(avg)
    assert arch == "bambnet_deblur_test" and task == "deblur_pair"
    expected = (first[key].float() + last["nets"]["deblur"][key].float()) / 2
    assert torch.allclose(net.state_dict()[key], expected, atol=2e-3)


def test_warm_up_ramps_the_learning_rate_linearly_from_the_runs_first_step():
    """--warmup 4 after a warm start at step 10: lr x 1/4, 2/4, 3/4, 1, then it stays; the ramp
    multiplies what a scheduler set, and its state travels in the optimiser's state dict."""
    from dpcli.train.loop import warm_up

    param = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([param], lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    seen = []
    for step in range(10, 16):
        warm_up({"g": opt}, step, 10, 4)
        seen.append(opt.param_groups[0]["lr"])
    assert seen[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3]) and seen[4:] == pytest.approx([1e-3, 1e-3])
    opt.step(), sched.step(), sched.step()  # the scheduler halves the rate: the ramp keeps its factor on top of it
    again = torch.optim.Adam([param], lr=1e-3)
    again.load_state_dict(opt.state_dict())
    warm_up({"g": again}, 16, 0, 4)  # a resumed run: the first step comes from the state, not from `start`
    assert again.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_resume_inside_the_warm_up_continues_exactly(tiny_dpdd, tmp_path):
    """--warmup 6: 8 steps straight == 3 steps, stop, --resume to 8; the ramp shows in the log."""
    full, _, _ = run_training(_req(tiny_dpdd, tmp_path / "a", steps=8, warmup=6))
    run_training(_req(tiny_dpdd, tmp_path / "b", steps=3, warmup=6))
    resumed, _, _ = run_training(_req(tiny_dpdd, tmp_path / "b", steps=8, warmup=6, resume=True))
    assert [h.get("lr_scale") for h in full.history] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, None, None,
                                                                      None], abs=1e-9)
    a = [h["loss"] for h in full.history[3:]]
    b = [h["loss"] for h in resumed.history]
    assert len(b) == 5 and max(abs(x - y) for x, y in zip(a, b)) < 1e-6
    plain, _, _ = run_training(_req(tiny_dpdd, tmp_path / "c", steps=8))
    assert abs(plain.history[1]["loss"] - full.history[1]["loss"]) > 1e-7  # the ramp changes the updates
