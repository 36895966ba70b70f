"""BaMBNet (dpcli/models/bambnet.py): the authors' size, mask guidance while training, the signed and
clamped CoC head, training through the inference path (tiny `*_test` variants: fast)."""
from __future__ import annotations

import pytest
import torch

from dpcli.errors import ModelError
from dpcli.models import create_model


def test_paper_size_matches_the_authors_parameter_count() -> None:
    with torch.device("meta"):
        counts = {n: sum(p.numel() for p in create_model(n).parameters()) for n in ("bambnet_deblur", "bambnet_coc")}
    assert counts["bambnet_deblur"] == counts["bambnet_coc"] == 4_497_731


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_trains(weight) -> None:
    # the in-place ops of the inference path must not break autograd
    net = create_model("bambnet_deblur_test").train()
    x = torch.rand(2, net.cfg.in_chans, 32, 32)
    out = net(x, coc=torch.rand(2, 3, 32, 32) * 8, guide_weight=weight)
    out.square().mean().backward()
    assert not [n for n, p in net.named_parameters() if p.grad is None]


class TestBaMBNet:
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

    def test_size_must_be_multiple_of_16(self) -> None:
        with pytest.raises(ModelError, match="multiples of 16"):
            create_model("bambnet_deblur_test")(torch.rand(1, 6, 20, 32))
