"""dpcli.zeroshot.networks: G_D and G_F."""
from __future__ import annotations

import torch

from dpcli.zeroshot.kernel_stage import KernelModel, prefit_generators
from dpcli.zeroshot.kernels import parametric_max_kernels
from dpcli.zeroshot.networks import DefocusNet, KernelGenerator, alpha_to_weights


class TestNetworks:
    def test_over_operator_weights_sum_to_one(self):
        alpha = torch.rand(2, 5, 4, 4)
        alpha[:, 0] = 1
        d = alpha_to_weights(alpha)
        assert torch.allclose(d.sum(1), torch.ones(2, 4, 4), atol=1e-6)
        # the top layer is never occluded: D_top = alpha_top
        assert torch.allclose(d[:, -1], alpha[:, -1])

    def test_defocus_net_shapes_and_uniform_start(self):
        net = DefocusNet(2, 6)
        alpha = net(torch.rand(1, 2, 64, 48))
        assert alpha.shape == (1, 6, 8, 6)
        d = alpha_to_weights(alpha)
        assert torch.allclose(d, torch.full_like(d, 1 / 6), atol=0.02)

    def test_kernel_generator_softmax_and_prefit(self):
        gen = KernelGenerator(4, 7)
        k = gen()
        assert k.shape == (4, 7, 7) and torch.all(k >= 0)
        assert torch.allclose(k.sum((-2, -1)), torch.ones(4), atol=1e-5)
        target = parametric_max_kernels(3.0)
        model = KernelModel(["f"], 4, 7, None, 0)
        before = (model()["f"] - target["f"][None]).abs().sum((-2, -1)).mean().item()
        after = prefit_generators(model, {"f": target["f"][None].expand(4, -1, -1, -1)}, 80, 2e-3)
        assert after < 0.25 * before
