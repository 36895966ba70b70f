"""Networks, registry, checkpoint loading and the Python API (tiny `*_test` variants: fast)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dpcli.api import Deblurrer, deblur_image, deblur_pair, estimate_coc
from dpcli.errors import ModelError
from dpcli.models import create_model, list_models, model_info
from dpcli.models.blocks import RCAB, ChannelAttention, defocus_masks, mask_weight
from dpcli.models.loading import load_model, read_checkpoint, save_weights


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights")
    out = {}
    for arch in ("bambnet_deblur_test", "bambnet_coc_test", "defocusgan_generator_test",
                 "defocusgan_defocusnet_test"):
        out[arch] = save_weights(create_model(arch), arch, d / f"{arch}.safetensors")
    return out


# --- blocks ---------------------------------------------------------------------------------------

class TestBlocks:
    def test_channel_attention_rescales_channels_only(self) -> None:
        ca = ChannelAttention(8, reduction=4)
        x = torch.rand(2, 8, 5, 7)
        y = ca(x)
        ratio = y / x
        # one factor per (image, channel), in (0, 1)
        assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-5)
        assert bool((ratio > 0).all() and (ratio < 1).all())

    def test_rcab_is_identity_when_body_is_zero(self) -> None:
        block = RCAB(8, 4)
        torch.nn.init.zeros_(block.conv2.weight)
        torch.nn.init.zeros_(block.conv2.bias)
        x = torch.randn(1, 8, 6, 6)
        assert torch.equal(block(x), x)

    def test_masks_partition_by_thresholds(self) -> None:
        coc = torch.tensor([0.0, 1.0, -1.9, 3.0, 4.2, -6.0, 6.2, 20.0]).view(1, 1, 1, 8).repeat(1, 3, 1, 1)
        coc[:, 1] *= 0.5  # max over channels of |coc| decides
        masks = defocus_masks(coc, (0.0, 1.9, 4.2, 6.2))
        assert torch.equal(sum(masks), torch.ones(1, 1, 1, 8))
        which = torch.stack(masks).argmax(0).flatten().tolist()
        assert which == [0, 0, 1, 1, 2, 2, 3, 3]

    def test_mask_weight_schedule(self) -> None:
        assert mask_weight(0) == 1.0
        assert math.isclose(mask_weight(10_000), math.exp(-1), rel_tol=1e-6)
        assert math.isclose(mask_weight(19_999), math.exp(-(2 * 19_999 / 2e4) ** 2), rel_tol=1e-6)
        assert mask_weight(20_000) == 0.0 and mask_weight(10**6) == 0.0


# --- networks -------------------------------------------------------------------------------------

class TestNetworks:
    def test_paper_sizes_match_the_authors_parameter_counts(self) -> None:
        with torch.device("meta"):
            counts = {n: sum(p.numel() for p in create_model(n).parameters())
                      for n in ("bambnet_deblur", "bambnet_coc", "defocusgan_generator", "defocusgan_defocusnet")}
        assert counts["bambnet_deblur"] == counts["bambnet_coc"] == 4_497_731
        # the authors' generator also declares two unused 3x3 convs (connect, connect2)
        assert counts["defocusgan_generator"] == 4_934_531 - 2 * (64 * 64 * 9 + 64)
        # defocus net: 3,306,755 + our learnable kernel bank (25 radii, 49x49)
        assert counts["defocusgan_defocusnet"] == 3_306_755 + 25 * 49 * 49

    def test_mask_guidance_acts_while_training_and_vanishes_after(self) -> None:
        torch.manual_seed(1)
        net = create_model("bambnet_deblur_test").eval()
        x = torch.rand(1, 6, 32, 32)
        coc = torch.full((1, 3, 32, 32), 5.0)  # every pixel in the heavy branch's mask
        plain = net(x)
        assert torch.equal(net(x, coc=coc, guide_weight=0.0), plain)
        guided = net(x, coc=coc, guide_weight=1.0)
        assert (guided - plain).abs().max() > 1e-4
        # masked by the light branch's mask only: the heavy branch's features are zeroed
        heavy_only = net.tail(net.stem(x) + net.body.branch(net.stem(x), 1))
        assert torch.allclose(guided, torch.sigmoid(heavy_only), atol=1e-6)

    @pytest.mark.parametrize("arch", ["bambnet_deblur_test", "defocusgan_generator_test", "defocusgan_defocusnet_test"])
    @pytest.mark.parametrize("weight", [0.0, 0.5])
    def test_trains(self, arch, weight) -> None:
        # the in-place ops of the inference path must not break autograd
        net = create_model(arch).train()
        x = torch.rand(2, net.cfg.in_chans, 32, 32)
        out = net(x, coc=torch.rand(2, 3, 32, 32) * 8, guide_weight=weight)
        out.square().mean().backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None and not n.startswith("kernel_bank.")]
        assert not missing

    def test_coc_net_is_signed_and_clamped(self) -> None:
        net = create_model("bambnet_coc_test").eval()
        with torch.no_grad():
            net.tail.bias.fill_(100.0)
            out = net(torch.rand(1, 6, 16, 16))
        assert float(out.max()) == 24.0

    @torch.no_grad()
    def test_coc_scale_multiplies_the_map(self) -> None:
        torch.manual_seed(0)
        plain = create_model("bambnet_coc_test").eval()
        scaled = create_model("bambnet_coc_test", coc_scale=8.0).eval()
        scaled.load_state_dict(plain.state_dict())
        x = torch.rand(1, 6, 16, 16)
        assert torch.allclose(scaled(x), (plain(x) * 8).clamp(-24, 24), atol=1e-5)
        assert create_model("defocusgan_defocusnet_small").cfg.coc_scale == 8.0

    @torch.no_grad()
    def test_generator_guidance_and_shapes(self) -> None:
        gen = create_model("defocusgan_generator_test").eval()
        x = torch.rand(2, 3, 32, 48)
        out = gen(x)
        assert out.shape == (2, 3, 32, 48) and 0 <= float(out.min()) and float(out.max()) <= 1
        coc = torch.rand(2, 3, 32, 48) * 8
        assert not torch.allclose(gen(x, coc=coc, guide_weight=0.7), out)
        assert torch.equal(gen(x, coc=coc, guide_weight=0.0), out)

    def test_residual_generator_starts_as_identity_and_learns(self) -> None:
        torch.manual_seed(0)
        gen = create_model("defocusgan_generator_test", residual=True)
        x = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(gen.eval()(x), x)
        opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
        target = (x + 0.1).detach()
        losses, stem_grads = [], []
        for _ in range(20):
            opt.zero_grad()
            loss = (gen.train()(x) - target).abs().mean()
            loss.backward()
            losses.append(float(loss.detach()))
            stem_grads.append(float(gen.stem.conv.weight.grad.abs().sum()))
            opt.step()
        assert stem_grads[0] == 0 and stem_grads[1] > 0  # the zero tail blocks the body for one step only
        assert losses[-1] < 0.5 * losses[0]
        with torch.no_grad():
            gen.tail.bias.fill_(5.0)
            assert float(gen.eval()(x).max()) == 1.0  # clamped at inference only
            assert float(gen.train()(x).max()) > 5.0

    def test_size_must_be_multiple_of_16(self) -> None:
        with pytest.raises(ModelError, match="multiples of 16"):
            create_model("bambnet_deblur_test")(torch.rand(1, 6, 20, 32))

    def test_discriminator_patch_map(self) -> None:
        d = create_model("defocusgan_discriminator_test")
        # 64 -> 33 -> 17 -> 9 (stride 2, pad 2, k 4) -> 10 -> 11 (stride 1): ~70x70-px patches
        assert d(torch.rand(1, 3, 64, 64)).shape == (1, 1, 11, 11)

    def test_kernel_bank_starts_at_butterworth_and_reblurs(self) -> None:
        from dpcli.optics import rdpd_kernel_bank

        net = create_model("defocusgan_defocusnet_test")
        bank = net.kernel_bank
        comb, left, right = bank.kernels()
        ref = rdpd_kernel_bank(bank.max_radius)
        assert torch.allclose(comb, ref[:, 2], atol=1e-6)
        assert torch.allclose(left[3], ref[3, 0], atol=1e-6) and torch.allclose(right[3], ref[3, 1], atol=1e-6)
        img = torch.rand(1, 3, 24, 24)
        c0, l0, r0 = bank.reblur(img, torch.zeros(1, 1, 24, 24))
        assert torch.allclose(c0, img, atol=1e-6) and torch.allclose(l0, img, atol=1e-6)
        radius = torch.full((1, 1, 24, 24), 2.5, requires_grad=True)
        c, l, r = bank.reblur(img, radius)
        (c.mean() + (l - r).abs().mean()).backward()
        assert radius.grad is not None and radius.grad.abs().sum() > 0
        assert bank.weight.grad is not None and bank.weight.grad.abs().sum() > 0
        # a negative radius swaps the views
        _, ln, rn = bank.reblur(img, -radius.detach())
        assert torch.allclose(ln, r.detach(), atol=1e-6) and torch.allclose(rn, l.detach(), atol=1e-6)


# --- registry -------------------------------------------------------------------------------------

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


# --- loading --------------------------------------------------------------------------------------

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


# --- API ------------------------------------------------------------------------------------------

class TestApi:
    @pytest.mark.parametrize("hw", [(37, 53), (16, 16), (5, 70)])
    def test_layouts_and_odd_sizes(self, tiny_weights, hw) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        rng = np.random.default_rng(0)
        left, right = rng.random((3, *hw), dtype=np.float32), rng.random((3, *hw), dtype=np.float32)
        chw = deblur_pair(left, right, weights=w, tile=0)
        assert chw.shape == (3, *hw) and chw.dtype == np.float32 and 0 <= chw.min() and chw.max() <= 1
        hwc = deblur_pair(left.transpose(1, 2, 0), right.transpose(1, 2, 0), weights=w, tile=0)
        assert np.allclose(hwc, chw.transpose(1, 2, 0), atol=1e-6)
        grey = deblur_pair(left[0], right[0], weights=w, tile=0)
        assert grey.shape == hw
        batch = deblur_pair(torch.from_numpy(left)[None].repeat(2, 1, 1, 1),
                            torch.from_numpy(right)[None].repeat(2, 1, 1, 1), weights=w, tile=0)
        assert isinstance(batch, torch.Tensor) and batch.shape == (2, 3, *hw)
        assert torch.allclose(batch[1], torch.from_numpy(chw), atol=1e-5)

    def test_full_frame_equals_the_module(self, tiny_weights) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        loaded = load_model("bambnet", task="deblur_pair", weights=w)
        x, y = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
        out = Deblurrer(loaded, device="cpu", tile=0).deblur_pair(x, y)
        with torch.no_grad():
            ref = loaded.module(torch.cat([x, y], 1))
        assert torch.allclose(out, ref, atol=1e-5)

    def test_post_stage_restores_the_input_local_mean(self, tiny_weights) -> None:
        import dataclasses

        from dpcli.optics.windows import smooth_mean

        loaded = load_model("bambnet", task="deblur_pair", weights=tiny_weights["bambnet_deblur_test"])
        x, y = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 80)
        combined = (x + y) / 2
        from dpcli.methods.post import post_for

        plain = Deblurrer(loaded, device="cpu", tile=0).deblur_pair(x, y)
        session = Deblurrer(dataclasses.replace(loaded, post=("keep_mean:6",)), device="cpu", tile=0)
        kept = session.deblur_pair(x, y, post=post_for(session))
        drift = lambda out: float(smooth_mean(out - combined, 6.0).abs().mean())  # noqa: E731
        assert drift(plain) > 0.05  # an untrained net: far from the input's local mean
        assert drift(kept) < 0.2 * drift(plain)  # (detail kept: tests/optics/test_windows.py)

    def test_tiled_close_to_full_frame(self, tiny_weights) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        x, y = torch.rand(3, 96, 112), torch.rand(3, 96, 112)
        full = deblur_pair(x, y, weights=w, tile=0)
        tiled = deblur_pair(x, y, weights=w, tile=64, tile_overlap=32)
        assert tiled.shape == full.shape
        # channel attention pools per tile, so tiles are close, not identical
        assert float((tiled - full).abs().mean()) < 0.02

    def test_single_image_and_coc(self, tiny_weights) -> None:
        img = np.random.default_rng(1).random((3, 21, 34), dtype=np.float32)
        out = deblur_image(img, weights=tiny_weights["defocusgan_generator_test"])
        assert out.shape == img.shape
        coc = estimate_coc(img, img, model="defocusgan", weights=tiny_weights["defocusgan_defocusnet_test"])
        assert coc.shape == (1, 21, 34) and np.abs(coc).max() <= 24
        coc_hw = estimate_coc(img[0], img[0], model="bambnet", weights=tiny_weights["bambnet_coc_test"])
        assert coc_hw.shape == (21, 34)

    def test_bf16_close_to_fp32(self, tiny_weights) -> None:
        w = tiny_weights["bambnet_deblur_test"]
        x, y = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
        a = deblur_pair(x, y, weights=w, tile=0)
        b = deblur_pair(x, y, weights=w, tile=0, precision="bf16")
        assert float((a - b).abs().max()) < 0.05
