"""The parts Restormer and LaKDNet share: LayerNorm over channels, config read from shapes."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dpcli.models import create_model
from dpcli.models.levels import ChannelLayerNorm, ffn_expansion_from
from dpcli.models.restormer import infer_cfg


def test_with_bias_norm_is_layer_norm_over_channels() -> None:
    norm = ChannelLayerNorm(5, "WithBias")
    with torch.no_grad():
        norm.body.weight.uniform_(0.5, 2)
        norm.body.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 7, 9) * 3 + 1
    want = F.layer_norm(x.permute(0, 2, 3, 1), (5,), norm.body.weight, norm.body.bias, eps=1e-5).permute(0, 3, 1, 2)
    assert torch.allclose(norm(x), want, atol=1e-5)


def test_bias_free_norm_scales_without_centring() -> None:
    norm = ChannelLayerNorm(4, "BiasFree")
    x = torch.randn(1, 4, 3, 3) + 5  # a large mean: centring would change the result a lot
    y = norm(x)
    assert torch.allclose(y * x.var(1, unbiased=False, keepdim=True).add(1e-5).sqrt(), x, atol=1e-4)


def test_an_unusual_ffn_width_round_trips_through_the_shapes() -> None:
    net = create_model("restormer_dual_test", ffn_expansion=3.1, width=12, heads=(1, 2, 3, 4))
    cfg = infer_cfg(net.state_dict())
    assert cfg.heads == (1, 2, 3, 4) and cfg.width == 12
    for channels in (12, 24, 48, 96):
        assert int(channels * cfg.ffn_expansion) == int(channels * 3.1)
    assert ffn_expansion_from(net.state_dict(), {"encoder_level1.0": 12}) > 3.0
