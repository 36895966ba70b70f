"""Checkpoint loading (dpcli/models/loading.py): .pth prefixes, pickled code refused, architecture
detection, task mismatch, fp16 storage (tiny `*_test` variants: fast)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dpcli.api import deblur_pair
from dpcli.errors import ModelError
from dpcli.models import create_model
from dpcli.models.loading import load_model, read_checkpoint, save_weights


class TestLoading:
    def test_pth_with_module_prefix(self, tmp_path, tiny_weights) -> None:
        ref = create_model("bambnet_deblur_test", weights=tiny_weights["bambnet_deblur_test"])
        sd = {"module." + k: v for k, v in ref.state_dict().items()}
        path = tmp_path / "ckpt.pth"
        torch.save({"state_dict": sd, "epoch": 7, "optimizers": [{"lr": 1e-4}]}, path)
        loaded = load_model("bambnet", task="deblur_pair", weights=path, arch="bambnet_deblur_test")
        x = torch.rand(1, 6, 16, 16)
        assert torch.equal(loaded.module(x), ref.eval()(x))
        assert loaded.colour_order == "RGB"

    def test_official_pth_with_module_prefix(self, tmp_path, reference_dir) -> None:
        from safetensors.torch import load_file

        sd = load_file(str(reference_dir / "defocusgan_generator" / "official_state_dict.safetensors"))
        path = tmp_path / "DefocusGAN.pth"
        torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)
        loaded = load_model("defocusgan", task="deblur_single", weights=path)  # detected: unique
        assert loaded.arch == "defocusgan_generator" and loaded.colour_order == "BGR"

    def test_refuses_pickled_code(self, tmp_path) -> None:
        path = tmp_path / "evil.pth"
        torch.save({"state_dict": {"w": torch.zeros(1)}, "cfg": Path("x")}, path)
        with pytest.raises(ModelError, match="refusing to load"):
            read_checkpoint(path)

    def test_ambiguous_bambnet_asks_for_arch(self, tmp_path, tiny_weights) -> None:
        sd, _ = read_checkpoint(tiny_weights["bambnet_deblur_test"])
        plain = tmp_path / "plain.safetensors"  # no metadata: cannot tell deblur from COC
        save_file(sd, str(plain))
        with pytest.raises(ModelError, match="--arch bambnet_coc_test or --arch bambnet_deblur_test"):
            load_model("bambnet", task="deblur_pair", weights=plain)
        # with our metadata the file says what it is
        assert load_model("bambnet", task="deblur_pair", weights=tiny_weights["bambnet_deblur_test"]).arch \
            == "bambnet_deblur_test"

    def test_wrong_architecture_names_keys(self, tiny_weights) -> None:
        with pytest.raises(ModelError, match=r"do not fit bambnet_deblur: .*shape mismatches: stem\.conv\.weight"):
            load_model("bambnet", task="deblur_pair", weights=tiny_weights["bambnet_deblur_test"],
                       arch="bambnet_deblur")
        with pytest.raises(ModelError, match="missing keys: down4"):
            load_model("defocusgan", task="deblur_single", weights=tiny_weights["bambnet_deblur_test"],
                       arch="defocusgan_generator_test")
        with pytest.raises(ModelError, match="not defocusgan: use --method bambnet"):
            load_model("defocusgan", task="deblur_single", weights=tiny_weights["bambnet_deblur_test"])

    def test_task_mismatch(self, tiny_weights) -> None:
        with pytest.raises(ModelError, match="estimates COC"):
            load_model("bambnet", task="deblur_pair", weights=tiny_weights["bambnet_coc_test"])

    def test_fp16_storage_round_trip(self, tmp_path) -> None:
        net = create_model("defocusgan_generator_test")
        path = save_weights(net, "defocusgan_generator_test", tmp_path / "h.safetensors", half=True)
        loaded = load_model("defocusgan", task="deblur_single", weights=path)
        for a, b in zip(net.state_dict().values(), loaded.module.state_dict().values()):
            assert b.dtype == torch.float32 and torch.allclose(a, b, atol=1e-3, rtol=1e-3)
