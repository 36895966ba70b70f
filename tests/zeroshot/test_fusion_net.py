"""Learned stage-1 fusion: features shared by training and inference, shapes for any layer count,
a fresh net equals the residual choice, and a briefly trained net beats it on synthetic scenes."""
from __future__ import annotations

import pytest
import torch

from dpcli.zeroshot.fusion import blend_layers, fuse_layers, fusion_methods, residual_weights
from dpcli.zeroshot.fusion_features import LAYER_FEATURES, SHARED_FEATURES, fusion_features
from dpcli.zeroshot.fusion_net import FusionNet, FusionNetConfig, learned_weights, load_fusion_net, save_fusion_net
from dpcli.zeroshot.fusion_train import cache_example, evaluate, fused_image, render_example
from dpcli.zeroshot.init import LayerStack


@pytest.fixture(scope="module")
def example():
    return render_example("phone", 1, 96, seed=3)


def _stack(ex) -> LayerStack:
    return LayerStack(ex["latent"], ex["blur_left"], ex["blur_right"], 0.0, ex["radii"])


def test_features_identical_in_training_and_inference(example):
    item = cache_example(example)  # the training cache
    feats = fusion_features(example["left"], example["right"], example["latent"], example["blur_left"],
                            example["blur_right"], example["radii"])  # what learned_weights computes
    assert torch.equal(item["layer"], feats.layer.half())
    assert torch.equal(item["shared"], feats.shared.half())
    assert torch.equal(item["base_logits"], feats.base_logits.half())
    # and the fused image of the training loss is the inference path's blend (up to the cache's fp16)
    torch.manual_seed(0)
    net = FusionNet()
    torch.nn.init.normal_(net.head.weight, std=0.5)
    w = learned_weights(example["left"], example["right"], _stack(example), net)
    img_inf = blend_layers(w, example["latent"])
    img_train = fused_image(net, feats.layer[None], feats.shared[None], feats.base_logits[None],
                            example["latent"][None], feats.scale)[0]
    assert torch.allclose(img_inf, img_train, atol=1e-5)


@pytest.mark.parametrize("n_layers", [3, 7, 18])
def test_shapes_any_layer_count(n_layers):
    torch.manual_seed(0)
    h, w = 37, 50  # not multiples of the feature scale
    left, right = torch.rand(1, h, w), torch.rand(1, h, w)
    latent = torch.rand(n_layers, 1, h, w)
    stack = LayerStack(latent, latent + 0.01 * torch.rand_like(latent), latent, 0.0,
                       torch.linspace(-3, 5, n_layers))
    feats = fusion_features(left, right, stack.latent, stack.blur_left, stack.blur_right, stack.radii)
    assert feats.layer.shape == (n_layers, LAYER_FEATURES, 10, 13)
    assert feats.shared.shape == (SHARED_FEATURES, 10, 13)
    assert torch.isfinite(feats.layer).all() and torch.isfinite(feats.shared).all()
    net = FusionNet(FusionNetConfig(width=8))
    torch.nn.init.normal_(net.head.weight)
    weights = learned_weights(left, right, stack, net)
    assert weights.shape == (n_layers, h, w)
    assert torch.allclose(weights.sum(0), torch.ones(h, w), atol=1e-5)


def test_fresh_net_is_the_residual_choice(example):
    stack = _stack(example)
    fresh = learned_weights(example["left"], example["right"], stack, FusionNet())
    base = residual_weights(example["left"], example["right"], stack.blur_left, stack.blur_right)
    assert torch.allclose(fresh, base, atol=1e-6)


def test_registered_and_round_trip(tmp_path, example):
    assert "learned" in fusion_methods()
    torch.manual_seed(1)
    net = FusionNet(FusionNetConfig(width=8, dilations=(1, 3), layer_channels=(0, 2, 5), shared_channels=()))
    torch.nn.init.normal_(net.head.weight)
    path = save_fusion_net(net, tmp_path / "f.safetensors", {"steps": 3})
    back = load_fusion_net(path)
    stack = _stack(example)
    a = learned_weights(example["left"], example["right"], stack, net)
    b = learned_weights(example["left"], example["right"], stack, back)
    assert torch.equal(a, b)
    assert fuse_layers(example["left"], example["right"], stack, method="residual").weights.shape == a.shape
    from dpcli.zeroshot import ZeroShotConfig

    cfg = ZeroShotConfig(fusion="learned", fusion_weights=str(path)).validate()  # --fusion-weights FILE
    assert torch.equal(fuse_layers(example["left"], example["right"], stack, cfg).weights, a)


def _train(items, steps: int, seed: int = 0) -> FusionNet:
    torch.manual_seed(seed)
    net = FusionNet(FusionNetConfig(width=12))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        for it in items:
            img = fused_image(net, it["layer"][None].float(), it["shared"][None].float(),
                              it["base_logits"][None].float(), it["latent"][None].float(), it["scale"])
            loss = ((img - it["gt"]).abs() / it["level"]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def test_brief_training_beats_the_residual_choice():
    # small Pixel-like scenes; the residual choice leaves over 0.5 dB to the GT-picked oracle here
    items = [cache_example(render_example("phone", i, 96, seed=5)) for i in range(3)]
    before = evaluate(None, items)["all"]
    assert before["oracle"] - before["residual"] > 0.5
    after = evaluate(_train(items, 40), items)["all"]
    assert after["learned"] > before["residual"] + 0.1


@pytest.mark.slow
def test_trained_net_generalises_to_unseen_scenes():
    train = [cache_example(render_example("phone", i, 160, seed=11)) for i in range(8)]
    held = [cache_example(render_example("phone", i, 160, seed=12)) for i in range(4)]
    net = _train(train, 60)
    row = evaluate(net, held)["all"]
    assert row["learned"] > row["residual"]


@pytest.mark.slow
def test_shipped_dslr_weights_beat_the_residual_choice_on_unseen_synthetic_scenes():
    from dpcli.zeroshot.fusion_net import default_fusion_weights

    if not default_fusion_weights("dslr").is_file():
        pytest.skip("no dslr fusion weights shipped")
    net = load_fusion_net(domain="dslr")
    items = [cache_example(render_example("dslr", i, 384, seed=21)) for i in range(4)]  # training used seed 7
    row = evaluate(net, items)["all"]
    assert row["learned"] > row["residual"] + 0.05


def test_auto_fusion_is_learned_where_weights_ship_and_residual_elsewhere(example, tmp_path):
    from dpcli.zeroshot import ZeroShotConfig
    from dpcli.zeroshot.fusion_net import auto_fusion_method, default_fusion_weights

    cfg = ZeroShotConfig()
    assert cfg.fusion == "auto"
    assert auto_fusion_method(1, cfg) == "residual"  # grey phone pairs: no learned fusion beat it
    stack = _stack(example)
    assert example["left"].shape[0] == 1
    grey = fuse_layers(example["left"], example["right"], stack, cfg)
    assert grey.method == "residual"
    assert torch.equal(grey.weights, fuse_layers(example["left"], example["right"], stack, method="residual").weights)
    if default_fusion_weights("dslr").is_file():
        assert auto_fusion_method(3, cfg) == "learned"
    net = FusionNet()
    path = save_fusion_net(net, tmp_path / "f.safetensors")
    own = ZeroShotConfig(fusion_weights=str(path)).validate()  # a file makes "auto" learned, on any data
    out = fuse_layers(example["left"], example["right"], stack, own)
    assert out.method == "learned"
    assert torch.allclose(out.weights, learned_weights(example["left"], example["right"], stack, net), atol=1e-6)
