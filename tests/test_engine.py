"""The inference engine's post stages (dpcli.engine.Deblurrer._post): the focus gate of DP weights."""
import json

import numpy as np
import pytest
import torch

from dpcli.engine import Deblurrer
from dpcli.models.loading import LoadedModel
from dpcli.models.registry import create_model, manifest_path, model_info
from dpcli.synth.scene import make_test_scene


def _session(focus_gate: bool) -> Deblurrer:
    torch.manual_seed(0)
    net = create_model("bambnet_deblur_test").eval()
    loaded = LoadedModel(net, "bambnet_deblur_test", model_info("bambnet_deblur_test"), focus_gate=focus_gate,
                         space="srgb")
    return Deblurrer(loaded, device="cpu", tile=0)


def test_focus_gate_returns_an_in_focus_pair_unchanged():
    sharp = make_test_scene(64, seed=3).sharp.numpy()
    gated = _session(True).deblur_pair(sharp, sharp)
    assert np.array_equal(gated, np.clip(sharp, 0, 1))
    plain = _session(False).deblur_pair(sharp, sharp)
    assert np.abs(plain - sharp).max() > 1e-3  # the untrained net alone does change it


def test_focus_gate_keeps_the_correction_where_the_pair_is_blurred():
    s = make_test_scene(96, seed=1, max_radius=6.0, focus_mode="front")
    left, right, combined = s.left.numpy(), s.right.numpy(), ((s.left + s.right) / 2).numpy()
    plain, gated = _session(False).deblur_pair(left, right), _session(True).deblur_pair(left, right)
    blurred = s.defocus[0].numpy() > 3
    kept = np.abs(gated - combined)[:, blurred].mean() / np.abs(plain - combined)[:, blurred].mean()
    assert kept > 0.6


def test_shipped_dp_weights_with_the_gate_are_dslr_and_srgb():
    """Where the manifest turns the gate on, the entry says which encoding its views are measured in."""
    for entry in json.loads(manifest_path().read_text())["weights"]:
        if entry.get("focus_gate"):
            assert entry["space"] in ("srgb", "linear") and entry["input_recipe"] != "C"
