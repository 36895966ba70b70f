"""dpcli.zeroshot.config: every field validated with the option's name and valid range."""
from __future__ import annotations

import numpy as np
import pytest

import dpcli.zeroshot.pipeline as pipeline
from dpcli.errors import InputError
from dpcli.zeroshot import SCHEDULES, ZeroShotConfig, make_config, zeroshot_deblur


@pytest.mark.parametrize("field, value, message", [
    ("layers", 0, "--layers must be at least 2 (got 0)"),
    ("layers", 1, "--layers must be at least 2 (got 1)"),
    ("max_radius", -3, "--last-layer-radius must be > 0 px (got -3)"),
    ("max_radius", float("nan"), "--last-layer-radius must be > 0 px (got nan)"),
    ("time_budget", 0, "--time-budget must be > 0 seconds (got 0)"),
    ("time_budget", -5.0, "--time-budget must be > 0 seconds (got -5.0)"),
    ("grid", (0, 8), "--grid must be two positive integers ROWSxCOLS (got 0x8)"),
    ("grid", (6,), "--grid must be two positive integers ROWSxCOLS (got (6,))"),
    ("lam", 0.0, "lam must be > 0 (got 0.0)"),
    ("output_stage", "final", "--output-stage must be init, defocus or kernels (got 'final')"),
    ("focus", "side", "--focus must be front, back or both (got 'side')"),
    ("kernel_beta", 1.0, "--kernel-beta must be in [0, 1) (got 1.0)"),
    ("init", "exact", "--init must be closed or iterative (got 'exact')"),
    ("precision", "fp64", "--precision must be fp32, bf16 or fp16 (got 'fp64')"),
    ("choice_windows", (), "choice_windows must be one or more positive window sizes in px (got ())"),
    ("choice_temperature", 0, "choice_temperature must be > 0 (got 0)"),
    ("gd_iters", -1, "gd_iters must be an integer >= 0 (got -1)"),
    ("gd_crop", 4, "gd_crop must be an integer >= 8 px (got 4)"),
    ("max_active", 0, "max_active must be an integer >= 1 (got 0)"),
    ("kernel_readout", "stitch", "kernel_readout must be resolve or latent (got 'stitch')"),
    ("fusion", "magic", "--fusion must be one of"),
])
def test_validate_names_the_option_and_range(field, value, message):
    with pytest.raises(InputError) as err:
        ZeroShotConfig(**{field: value}).validate()
    assert str(err.value).startswith(message)


def test_fusion_weights_must_exist_and_go_with_the_learned_fusion(tmp_path):
    with pytest.raises(InputError, match=r"^--fusion-weights .*nope.safetensors: no such file$"):
        ZeroShotConfig(fusion="learned", fusion_weights=str(tmp_path / "nope.safetensors")).validate()
    (tmp_path / "f.safetensors").write_bytes(b"x")
    with pytest.raises(InputError, match=r"^--fusion-weights is for --fusion learned \(got --fusion residual\)$"):
        ZeroShotConfig(fusion="residual", fusion_weights=str(tmp_path / "f.safetensors")).validate()


def test_every_schedule_is_valid_and_groups_must_divide_the_grid():
    for name in SCHEDULES:
        assert make_config(name).validate() is not None
    with pytest.raises(InputError, match="gf_groups must divide the number of grid patches 48"):
        ZeroShotConfig(gf_groups=5).validate()
    with pytest.raises(InputError, match="--schedule must be one of fast, paper"):
        make_config("slow")


def test_zeroshot_deblur_validates_before_any_work(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("stage 1 ran with an invalid config")

    monkeypatch.setattr(pipeline, "solve_layers", never)
    monkeypatch.setattr(pipeline, "horizontal_disparity", never)
    with pytest.raises(InputError, match="--layers must be at least 2"):
        zeroshot_deblur(np.zeros((1, 64, 64)), np.zeros((1, 64, 64)), ZeroShotConfig(layers=0))
