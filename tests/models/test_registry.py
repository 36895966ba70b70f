"""The model registry (dpcli/models/registry.py): names, unknown names, where weights come from, sha256."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from dpcli.api import deblur_pair
from dpcli.errors import ModelError
from dpcli.models import create_model, list_models, model_info
from dpcli.models.loading import load_model


def _install_tiny_bambnet(folder: Path, monkeypatch, tiny_weights, training_data: str) -> None:
    """A weights folder whose manifest registers the tiny BaMBNet as ``bambnet_deblur_test.unit``."""
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(folder))
    data = tiny_weights["bambnet_deblur_test"].read_bytes()
    (folder / "w.safetensors").write_bytes(data)
    entry = {"name": "bambnet_deblur_test.unit", "file": "w.safetensors",
             "sha256": hashlib.sha256(data).hexdigest(), "training_data": training_data}
    (folder / "manifest.json").write_text(json.dumps({"weights": [entry]}))


class TestRegistry:
    def test_list_models(self) -> None:
        names = list_models()
        for n in ("bambnet_deblur", "bambnet_coc", "defocusgan_generator", "defocusgan_defocusnet",
                  "bambnet_deblur_small", "defocusgan_generator_small", "defocusgan_discriminator"):
            assert n in names
        assert list_models("bambnet*") == sorted(n for n in names if n.startswith("bambnet"))
        assert model_info("bambnet_deblur").official_recipe == "LRR"
        assert model_info("defocusgan_generator").official_recipe == "CC"

    def test_unknown_name_lists_valid_ones(self) -> None:
        with pytest.raises(ModelError, match="bambnet_deblur"):
            create_model("bambnet_large")

    def test_no_weights_says_where_they_come_from(self, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
        with pytest.raises(ModelError, match=r"dpdeblur train.*--weights"):
            load_model("bambnet", task="deblur_pair")

    def test_missing_default_names_installed_weights_of_the_family(self, tmp_path, monkeypatch, tiny_weights) -> None:
        _install_tiny_bambnet(tmp_path, monkeypatch, tiny_weights, "unit-test scenes")
        # never used silently (trained for one kind of data), but named
        with pytest.raises(ModelError, match=r"these do: bambnet_deblur_test\.unit \(any data\)\. Name one as the "
                                             r"method \(--method NAME; model=NAME in Python\)") as err:
            load_model("bambnet", task="deblur_pair")
        assert len(str(err.value)) < 300 and "--model" not in str(err.value)
        for family, task in (("defocusgan", "deblur_single"), ("bambnet", "coc")):  # other family / task
            with pytest.raises(ModelError) as err:
                load_model(family, task=task)
            assert "these do" not in str(err.value)

    def test_sha256_checked(self, tmp_path, monkeypatch, tiny_weights) -> None:
        _install_tiny_bambnet(tmp_path, monkeypatch, tiny_weights, "none (unit test)")
        assert list_models(pretrained=True) == ["bambnet_deblur_test.unit"]
        net = create_model("bambnet_deblur_test", pretrained=True)
        ref = create_model("bambnet_deblur_test", weights=tiny_weights["bambnet_deblur_test"])
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))
        data = (tmp_path / "w.safetensors").read_bytes()
        (tmp_path / "w.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        with pytest.raises(ModelError, match="sha256 mismatch"):
            create_model("bambnet_deblur_test.unit")

    def test_find_pretrained_by_name(self, tmp_path, monkeypatch, tiny_weights) -> None:
        from dpcli.models.registry import find_pretrained

        _install_tiny_bambnet(tmp_path, monkeypatch, tiny_weights, "none (unit test)")
        found = find_pretrained("bambnet_deblur_test.unit")
        assert found is not None and found.path == tmp_path / "w.safetensors"
        assert found.path_checked() == found.path
        assert find_pretrained("bambnet_deblur_test.other") is None and find_pretrained("bambnet_deblur_test") is None
