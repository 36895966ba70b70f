"""DefocusGAN (dpcli/models/defocusgan.py): the authors' sizes, generator guidance, the residual
generator, the patch discriminator, the Butterworth kernel bank (tiny `*_test` variants: fast)."""
from __future__ import annotations

import pytest
import torch

from dpcli.models import create_model


def test_paper_sizes_match_the_authors_parameter_counts() -> None:
    with torch.device("meta"):
        counts = {n: sum(p.numel() for p in create_model(n).parameters())
                  for n in ("defocusgan_generator", "defocusgan_defocusnet")}
    # the authors' generator also declares two unused 3x3 convs (connect, connect2)
    assert counts["defocusgan_generator"] == 4_934_531 - 2 * (64 * 64 * 9 + 64)
    # defocus net: 3,306,755 + our learnable kernel bank (25 radii, 49x49)
    assert counts["defocusgan_defocusnet"] == 3_306_755 + 25 * 49 * 49


@pytest.mark.parametrize("arch", ["defocusgan_generator_test", "defocusgan_defocusnet_test"])
@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_trains(arch, weight) -> None:
    # the in-place ops of the inference path must not break autograd
    net = create_model(arch).train()
    x = torch.rand(2, net.cfg.in_chans, 32, 32)
    out = net(x, coc=torch.rand(2, 3, 32, 32) * 8, guide_weight=weight)
    out.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None and not n.startswith("kernel_bank.")]
    assert not missing


class TestDefocusGAN:
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
