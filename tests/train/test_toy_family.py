"""A network family added in one file runs through `dpdeblur train` and `dpdeblur run`.

The family (a residual three-layer conv net on DP pairs), its training stage and its preset are
registered here, the way a plug-in registers them through the ``dpcli.families`` entry-point
group: nothing in the loader, ``run`` or ``train`` names it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import EntryPoint

import numpy as np
import pytest
import torch
from torch import nn

from dpcli.errors import ModelError
from dpcli.io.images import read_image, write_image
from dpcli.models import create_model, registry
from dpcli.tiling import TilingSpec
from dpcli.train import stages
from dpcli.train.loop import StageTrainer
from tests.cli.conftest import dpdeblur  # noqa: F401  (the CLI runner fixture)


# --- the family: one module's worth ----------------------------------------------------------------

@dataclass(frozen=True)
class ToyCfg:
    in_chans: int = 6
    width: int = 8


class ToyNet(nn.Module):
    """cat(L, R) -> mean of the views + a learnt residual (starts as the identity)."""

    def __init__(self, cfg: ToyCfg = ToyCfg()) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = nn.Sequential(nn.Conv2d(cfg.in_chans, cfg.width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(cfg.width, 3, 3, padding=1))
        nn.init.zeros_(self.body[2].weight)
        nn.init.zeros_(self.body[2].bias)
        self.tiling = TilingSpec(multiple_of=4, tile=64, overlap=8)
        self.supports_bf16 = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :3] + x[:, 3:6]) / 2 + self.body(x)


@dataclass
class ToyStageConfig:
    model: str = "toynet_pair"
    lr: float = 1e-2


class ToyTrainer(StageTrainer):
    name = "toynet"

    def __init__(self, cfg: ToyStageConfig, device: torch.device, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        self.cfg = cfg
        self.nets["net"] = create_model(cfg.model).to(device)
        self.optimizers["net"] = torch.optim.Adam(self.nets["net"].parameters(), lr=cfg.lr)

    def train_step(self, batch, step):
        opt = self.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        pred = self.run["net"](torch.cat([batch["left"], batch["right"]], 1))
        loss = (pred - batch["target"]).abs().mean()
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def predict(self, batch):
        return self.nets["net"](torch.cat([batch["left"], batch["right"]], 1)).clamp(0, 1)


def register_toy() -> None:
    """What the family's module does on import (an entry point may name this function)."""
    registry.register_model(family="toynet", task="deblur_pair", recipe="LR", official_recipe="LR",
                            paper="toy", cfg=ToyCfg())(toynet_pair)
    registry.register_family(registry.Family(name="toynet", paper="toy", defaults={"deblur_pair": "toynet_pair"}))
    stages.register_stage(stages.StageSpec(
        "toynet", "deblur", ToyTrainer, ToyStageConfig, default=True,
        presets={"test": {"stage": {"model": "toynet_pair", "lr": 1e-2},
                          "loop": {"steps": 6, "batch_size": 2, "crop": 32, "val_every": 3, "ckpt_every": 3}}}))


def toynet_pair(**kwargs) -> ToyNet:
    """Toy residual net for DP pairs."""
    return ToyNet(ToyCfg(**kwargs))


# --- the tests ---------------------------------------------------------------------------------------

@pytest.fixture()
def toy_family(monkeypatch, tmp_path):
    """The toy family registered through a (simulated) installed plug-in's entry point, for this
    test only; registered weights go to a temporary folder."""
    registry._ensure_registered()
    for name in ("_MODELS", "_FAMILIES"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))
    monkeypatch.setattr(stages, "_STAGES", dict(stages._STAGES))
    ep = EntryPoint(name="toynet", value=f"{__name__}:register_toy", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group=None: [ep] if group == ep.group else [])
    monkeypatch.setattr(registry, "_LOADED", False)
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path / "weights"))
    assert "toynet" in {f.name for f in registry.list_families()}
    return tmp_path




def test_toy_family_trains_exports_and_runs(toy_family, dpdeblur) -> None:
    tmp = toy_family
    r = dpdeblur("train", "toynet", "--data", "synth", "--config", "test",
                 "--synth-length", "8", "--val-count", "2", "-o", tmp / "run", "--export", "t1",
                 "--threads", "1", "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["last_step"] == 6 and summary["exported"]["name"] == "toynet_pair.t1"
    manifest = json.loads((tmp / "weights" / "manifest.json").read_text())
    assert [e["name"] for e in manifest["weights"]] == ["toynet_pair.t1"]

    rng = np.random.default_rng(0)
    src = tmp / "in"
    src.mkdir()
    left = rng.random((3, 36, 44), dtype=np.float32)
    write_image(src / "scene_L.png", left, 16)
    write_image(src / "scene_R.png", left, 16)
    for args in (["--model", "toynet_pair.t1"], ["--weights", tmp / "weights" / "toynet_pair.t1.safetensors"]):
        r = dpdeblur("run", src, "-o", tmp / "out", "--overwrite", "--no-swap-lr",
                     "--threads", "1", "-q", *args)
        assert r.code == 0, r.err
        got = read_image(tmp / "out" / "scene.png").data
        # the net starts as the mean of the views and trained 6 steps: it still returns the scene
        assert got.shape == left.shape and float(np.abs(got - left).mean()) < 0.05


def test_toy_family_stage_is_listed_and_unknown_stage_names_it(toy_family, dpdeblur) -> None:
    r = dpdeblur("train", "toynet", "--stage", "coc", "-o", toy_family / "r")
    assert r.code != 0 and "toynet has stages deblur, not 'coc'" in r.err
    r = dpdeblur("train", "restormer", "-o", toy_family / "r")
    assert r.code != 0 and "restormer has no training stages" in r.err and "toynet" in r.err


def test_the_toy_family_shows_everywhere_with_nothing_else_edited(toy_family, dpdeblur, tmp_path) -> None:
    """Registered in its one module, the family is in every list of families: the help of `run` and
    `train`, `dpdeblur models`, the unknown-method error, the weights hint; and the contract over
    every registered architecture (tests/models/test_family_contract.py) holds for it."""
    from dpcli.methods import get_method
    from dpcli.models.registry import weights_hint
    from tests.models import test_family_contract as contract

    for command in ("run", "train"):
        r = dpdeblur(command, "--help")
        assert r.code == 0 and "toynet" in r.out, (command, r.out)
    r = dpdeblur("train", "--help")
    assert "toynet: deblur (default)" in " ".join(r.out.replace("│", " ").split())
    r = dpdeblur("models", "--json")
    assert r.code == 0 and "toynet" in {f["name"] for f in json.loads(r.out)["families"]}
    with pytest.raises(ModelError, match=r"\| toynet with --weights"):
        get_method("nonesuch")
    assert "toynet" not in weights_hint()  # it names no published weights (Family.weights_source)
    contract.test_forward_keeps_the_size_at_two_sizes("toynet_pair")
    contract.test_tiled_is_close_to_the_full_frame("toynet_pair")
    contract.test_bf16_runs_where_supported("toynet_pair")
    contract.test_weights_round_trip_and_the_architecture_is_recognised("toynet_pair", tmp_path)
