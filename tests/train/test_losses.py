"""Training losses: reblur geometry (BaMBNet, DefocusGAN), priors, WGAN-GP, perceptual."""
from __future__ import annotations

import pytest
import torch

from dpcli.optics import blur, translating_disk_kernels
from dpcli.train.losses import (
    BaMBNetCocLoss,
    DefocusReblurLoss,
    critic_loss,
    defocus_adversarial_loss,
    defocus_weights,
    gradient_penalty,
    hat_weights,
    tv_prior,
)
from tests.train.conftest import render_layers, texture


def _disk_pair(radius: float, size: int = 48):
    img = texture(size, torch.Generator().manual_seed(1))[None]
    kl, kr = translating_disk_kernels(torch.tensor([radius]))
    return blur(img, kl[:, None]), blur(img, kr[:, None])


def test_hat_weights_partition_and_interpolate():
    grid = torch.arange(-3.0, 4.0)
    field = torch.tensor([-3.0, -0.25, 0.0, 1.5, 2.9, 7.0]).view(1, 1, 1, 6)
    w = hat_weights(field, grid)[0, :, 0, 0]  # (R, 6)
    assert torch.allclose(w.sum(0), torch.ones(6))
    assert torch.allclose((w * grid[:, None]).sum(0), field.flatten().clamp(-3, 3))


@pytest.mark.parametrize("radius", [3.0, -3.0])
def test_bambnet_coc_loss_is_smallest_at_the_true_signed_radius(radius):
    left, right = _disk_pair(radius)
    loss = BaMBNetCocLoss(r_max=8, lam=0.0, srgb=False)
    values = {c: float(loss(left, right, torch.full((1, 1, 48, 48), c))["geometric"])
              for c in (-6.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.5, 6.0)}
    assert min(values, key=values.get) == radius
    assert values[radius] < 0.2 * values[-radius]  # the sign is identified, not only |r|
    # the gradient at a fractional radius points toward the true one
    coc = torch.full((1, 1, 48, 48), radius * 0.5, requires_grad=True)
    loss(left, right, coc)["loss"].backward()
    assert float(coc.grad.sum()) * radius < 0


def test_tv_prior_penalises_rough_maps():
    smooth = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    rough = smooth + 0.2 * torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    assert float(tv_prior(smooth)) < float(tv_prior(rough))
    assert float(tv_prior(torch.ones(1, 1, 8, 8))) == 0.0


def test_defocus_reblur_loss_prefers_the_true_map():
    from dpcli.models.defocusgan import ButterworthKernelBank

    size = 48
    sharp = texture(size, torch.Generator().manual_seed(2))
    left, right, comb = render_layers(sharp, [torch.ones(1, size, size)], [3.0])
    loss = DefocusReblurLoss(ButterworthKernelBank(8), lam=0.0, srgb=False)
    args = (sharp[None], comb[None], left[None], right[None])
    value = lambda r: float(loss(torch.full((1, 1, size, size), r), *args)["geometric"])  # noqa: E731
    at_true = value(3.0)
    assert at_true < 1e-6  # the bank starts at the RDPD kernels the scene was rendered with
    assert all(value(r) > 0.005 for r in (1.5, 2.5, 4.5, -3.0))  # -3: the DP terms fix the sign
    # the kernel bank receives gradients (it is learnable)
    loss(torch.full((1, 1, size, size), 2.5), *args)["loss"].backward()
    assert loss.bank.weight.grad is not None and float(loss.bank.weight.grad.abs().sum()) > 0


class TestAdversarial:
    def test_defocus_weights(self):
        d = torch.zeros(1, 1, 16, 16)
        d[..., 8:] = 20.0
        w = defocus_weights(d, (2, 2), r_max=25)
        assert torch.allclose(w.mean(), torch.tensor(1.0))
        assert float(w[..., 1].min()) > float(w[..., 0].max())  # more blur, more weight

    def test_gradient_penalty_zero_for_unit_lipschitz_linear_critic(self):
        v = torch.randn(1, 3, 8, 8)
        v = v / v.norm()
        critic = lambda x: (x * v).sum((1, 2, 3)).view(-1, 1, 1, 1)  # noqa: E731
        real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
        assert float(gradient_penalty(critic, real, fake)) < 1e-10
        critic2 = lambda x: 3 * critic(x)  # noqa: E731
        assert abs(float(gradient_penalty(critic2, real, fake)) - 4.0) < 1e-4

    def test_critic_and_generator_losses_have_opposite_pull(self):
        from dpcli.models.defocusgan import PatchDiscriminator

        torch.manual_seed(0)
        critic = PatchDiscriminator(3, 8)
        real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32, requires_grad=True)
        d = torch.full((2, 1, 32, 32), 5.0)
        out = critic_loss(critic, real, fake, d)
        assert set(out) == {"loss", "wasserstein", "gp"} and float(out["gp"]) >= 0
        g = defocus_adversarial_loss(critic, fake, d)
        (grad,) = torch.autograd.grad(g, fake)
        assert float(grad.abs().sum()) > 0


def test_perceptual_loss_zero_for_identical_and_grows_with_blur():
    from dpcli.metrics.lpips import weights_available

    if not weights_available("vgg"):
        pytest.skip("converted VGG16 weights not present (dpdeblur convert-lpips)")
    from dpcli.optics import gaussian_kernel
    from dpcli.train.losses import PerceptualLoss

    img = texture(48, torch.Generator().manual_seed(3))[None]
    loss = PerceptualLoss()
    assert float(loss(img, img)) == 0.0
    values = [float(loss(blur(img, gaussian_kernel(torch.tensor([s]))[:, None]), img)) for s in (0.5, 1.0, 2.0)]
    assert values[0] < values[1] < values[2]
