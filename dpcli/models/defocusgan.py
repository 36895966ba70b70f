"""DefocusGAN: defocus-map guided multi-scale single-image defocus deblurring GAN.

Paper: Zhai et al., "Learnable Blur Kernel for Single-Image Defocus Deblurring in the Wild",
2022 (``000_*``). Authors' code and DPDD-trained weights: github.com/qylen/DefocusGAN (their
licence applies to their weights). Our own implementation; `checkpoint_filter_fn` maps the
authors' names onto ours and tests/models/test_official_parity.py proves equality.

Three networks:
* `DefocusGANGenerator`: single image -> AiF. A defocus-map guide block (DGB: the 4-branch
  multi-branch U-Net of BaMBNet) at full scale, then max-pool to 1/4 and a shorter DGB (stages
  1, 2, 7, 8 of the same weights), then to 1/8 and a shortest DGB (stages 1, 7), cascaded back
  up (bilinear x2 + concat + double conv; two transposed convs for x4) and added to the head
  features before the tail. During training each DGB's branch outputs are weighted by defocus
  masks (same thresholds as BaMBNet, masks at 1/4 and 1/8 by nearest subsampling) with the
  annealed weight exp(-(2 it / 2e4)^2), removed after 2e4 iterations.
* `PatchDiscriminator`: PatchGAN (Isola et al. 2017) with 3 strided layers.
* `DefocusMapNet`: the defocus-map estimator, a BaMBNet COC body with branches [1, 4, 4, 7]
  on cat(L, R), signed radius clamped to +-24 px, and `ButterworthKernelBank`, its learnable
  blur-kernel bank (one kernel per integer radius) initialised from the RDPD Butterworth DP
  kernel of `dpcli.optics`, used to re-blur an AiF image with a defocus map for the
  unsupervised geometric loss.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dpcli.models.bambnet import BaMBNet, BaMBNetCfg, convert_official_body_key
from dpcli.models.blocks import (
    ConvAct,
    MultiBranchUNet,
    check_multiple,
    defocus_masks,
    full_precision,
    guided_sum,
    mask_weight,
)
from dpcli.models.registry import Family, register_family, register_model
from dpcli.tiling import TilingSpec


@dataclass(frozen=True)
class DefocusGANCfg:
    in_chans: int = 3  # one (combined) image
    out_chans: int = 3
    width: int = 64
    branches: tuple[int, ...] = (1, 4, 7, 10)
    reduction: int = 16
    thresholds: tuple[float, ...] = (0.0, 1.9, 4.2, 6.2)
    anneal_iters: float = 2e4
    # ours, not the paper's: predict a residual on the input (tail zero-initialised, so training
    # starts from the identity) instead of sigmoid(tail); the small config trains far faster this way
    residual: bool = False

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.branches):
            raise ValueError(f"{len(self.branches)} branches need {len(self.branches)} thresholds")


class DoubleConv(nn.Module):
    """(3x3 conv without bias + ReLU) x 2."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class PoolDown(nn.Module):
    """Max-pool by ``factor`` then DoubleConv."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.conv = DoubleConv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.max_pool2d(x, self.factor))


class UpConcat(nn.Module):
    """Bilinear x2 (align_corners) of ``x``, padded to ``skip``'s size, cat(skip, x), DoubleConv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = DoubleConv(2 * channels, channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UpTransposed4(nn.Module):
    """x4 upsampling: transposed conv x2, DoubleConv, transposed conv x2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.conv = DoubleConv(channels, channels)
        self.up2 = nn.ConvTranspose2d(channels, channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up2(self.conv(self.up1(x)))


class DefocusGANGenerator(nn.Module):
    """DefocusGAN generator.

    Shapes: image (B, in_chans, H, W), H and W multiples of 16 -> AiF (B, out_chans, H, W) in [0, 1].
    """

    multiple_of = 16

    def __init__(self, cfg: DefocusGANCfg = DefocusGANCfg()) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        self.stem = ConvAct(cfg.in_chans, c)
        self.body = MultiBranchUNet(c, cfg.branches, cfg.reduction)  # shared by the three scales
        self.down4 = PoolDown(c, 4)
        self.down2 = PoolDown(c, 2)
        self.up2 = UpConcat(c)
        self.up4 = UpTransposed4(c)
        self.tail = nn.Conv2d(c, cfg.out_chans, 3, padding=1)
        if cfg.residual:
            if cfg.in_chans != cfg.out_chans:
                raise ValueError("a residual generator needs in_chans == out_chans")
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
        self.tiling = TilingSpec(multiple_of=self.multiple_of)
        self.supports_bf16 = True

    def guide_weight(self, iteration: int) -> float:
        return mask_weight(iteration, self.cfg.anneal_iters)

    def forward(
        self, x: torch.Tensor, coc: torch.Tensor | None = None, guide_weight: float = 0.0
    ) -> torch.Tensor:
        """Deblur one image.

        Args:
            x: (B, in_chans, H, W) blurred image in [0, 1].
            coc: optional (B, C, H, W) signed defocus map (px) building the masks while training.
            guide_weight: annealed mask weight (``self.guide_weight(iteration)``); 0 at inference.
        """
        check_multiple(x, self.multiple_of, type(self).__name__)
        n = len(self.cfg.branches)
        masks = masks4 = masks8 = None
        if coc is not None and guide_weight > 0:
            blur = coc.abs().amax(dim=1, keepdim=True)
            masks = defocus_masks(blur, self.cfg.thresholds)
            # nearest subsampling, as the authors' F.interpolate(scale_factor=1/4, 1/8)
            masks4 = defocus_masks(F.interpolate(blur, scale_factor=0.25), self.cfg.thresholds)
            masks8 = defocus_masks(F.interpolate(blur, scale_factor=0.125), self.cfg.thresholds)
        feat = self.stem(x)
        if masks is None:
            full = self.body.forward_sum(feat, skip_mid=False)
        else:
            pyr = self.body.pyramid(feat)
            full = guided_sum([self.body.branch(feat, b, skip_mid=False, pyr=pyr) for b in range(n)],
                              masks, guide_weight)
        x4 = self.down4(full)
        pyr4 = self.body.pyramid(x4)
        quarter = guided_sum([self.body.short_branch(x4, b, pyr4) for b in range(n)], masks4, guide_weight)
        x8 = self.down2(quarter)
        pyr8 = self.body.pyramid(x8)
        eighth = guided_sum([self.body.shortest_branch(x8, b, pyr8) for b in range(n)], masks8, guide_weight) + x8
        up = self.up4(quarter + self.up2(eighth, x4))
        out = full_precision(self.tail, feat + up + full)
        if not self.cfg.residual:
            return torch.sigmoid(out)
        out = x.float() + out
        return out if self.training else out.clamp(0, 1)  # unclamped while training: no dead gradients


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: 3 stride-2 4x4 conv layers, a stride-1 layer, a 1-channel map.

    Instance norm (no affine) after every conv but the first and last, LeakyReLU 0.2, as the
    authors' ``NLayerDiscriminator(n_layers=3)``.
    Shapes: (B, in_chans, H, W) -> (B, 1, ~H/8, ~W/8) unbounded scores.
    """

    def __init__(self, in_chans: int = 3, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width * prev, width * mult, 4, stride=stride, padding=2),
                       nn.InstanceNorm2d(width * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(width * mult, 1, 4, stride=1, padding=2))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ButterworthKernelBank(nn.Module):
    """Learnable combined blur kernels, one per integer radius 0..max_radius (``000_*`` Eq. 3-4).

    Initialised from the RDPD Butterworth kernel (order 3, cutoff 2.5, beta 0.1, Gaussian
    smoothing) of `dpcli.optics.rdpd_kernel_bank`; kernel n lives in the central (2n+1)^2 window
    of a (2R+1)^2 array. Left/right DP kernels are the combined kernel times the fixed linear
    ramp of docs/CONVENTIONS.md (swapped for negative radii).
    """

    def __init__(self, max_radius: int = 24, order: int = 3, cutoff: float = 2.5, beta: float = 0.1) -> None:
        super().__init__()
        from dpcli.optics import rdpd_kernel_bank

        self.max_radius = int(max_radius)
        bank = rdpd_kernel_bank(self.max_radius, order=order, cutoff=cutoff, beta=beta)
        # Ambiguity (paper): what is learnt; we learn each combined kernel, the L/R split stays the ramp.
        self.weight = nn.Parameter(bank[:, 2].clone())  # (R+1, k, k) combined kernels
        k = 2 * self.max_radius + 1
        self.register_buffer("ramp", torch.linspace(0.0, 1.0, k).view(1, 1, k), persistent=False)

    def kernels(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(combined, left, right) for positive radii: each (R+1, k, k), non-negative, sum 1.

        Ambiguity (paper): how the learnt kernel stays a valid PSF; we clamp at 0 and renormalise.
        """
        comb = self.weight.clamp_min(0)
        k = comb.shape[-1]
        support = torch.zeros_like(comb)
        for n in range(self.max_radius + 1):  # kernel n may not grow past its (2n+1)^2 window
            lo = self.max_radius - n
            support[n, lo:k - lo, lo:k - lo] = 1
        comb = comb * support
        left = comb * self._ramp_for(comb)
        right = left.flip(-1)
        norm = lambda t: t / t.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)  # noqa: E731
        return norm(comb), norm(left), norm(right)

    def _ramp_for(self, comb: torch.Tensor) -> torch.Tensor:
        # per-radius ramp 0..1 across that radius' own window (1/2 for radius 0)
        k = comb.shape[-1]
        ramps = torch.zeros(self.max_radius + 1, 1, k, device=comb.device, dtype=comb.dtype)
        ramps[0, 0, self.max_radius] = 0.5
        for n in range(1, self.max_radius + 1):
            lo = self.max_radius - n
            ramps[n, 0, lo:k - lo] = torch.linspace(0, 1, 2 * n + 1, device=comb.device, dtype=comb.dtype)
        return ramps

    def reblur(self, aif: torch.Tensor, radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Blur an AiF image with a per-pixel signed radius (layered, linear in the radius).

        Args:
            aif: (B, C, H, W) all-in-focus image.
            radius: (B, 1 | C, H, W) signed radius in px, |r| <= max_radius.
        Returns: (combined, left, right) blurred images, each (B, C, H, W); differentiable in
            ``radius`` and in the kernel bank.
        """
        from dpcli.optics import blur

        comb_k, left_k, right_k = self.kernels()
        mag = radius.abs().clamp(max=self.max_radius)
        pos = (radius >= 0).to(aif.dtype)
        outs = [torch.zeros_like(aif) for _ in range(3)]
        n_top = int(torch.ceil(mag.detach().max()).item()) if mag.numel() else 0
        for n in range(n_top + 1):
            w = (1 - (mag - n).abs()).clamp_min(0)  # hat weight of integer radius n
            if not bool((w > 0).any()):
                continue
            lo = self.max_radius - n
            win = slice(lo, comb_k.shape[-1] - lo)
            kc, kl, kr = (k[n, win, win].view(1, 1, 2 * n + 1, 2 * n + 1) for k in (comb_k, left_k, right_k))
            bc, bl, br = blur(aif, kc), blur(aif, kl), blur(aif, kr)
            outs[0] = outs[0] + w * bc
            outs[1] = outs[1] + w * (pos * bl + (1 - pos) * br)
            outs[2] = outs[2] + w * (pos * br + (1 - pos) * bl)
        return outs[0], outs[1], outs[2]


class DefocusMapNet(BaMBNet):
    """DefocusGAN's defocus-map estimator: BaMBNet COC body, branches [1, 4, 4, 7], plus its kernel bank.

    Shapes: cat(L, R) (B, 6, H, W) -> signed radius (B, 3, H, W) in px, clamped to +-24.
    """

    def __init__(self, cfg: BaMBNetCfg = BaMBNetCfg(task="coc", branches=(1, 4, 4, 7)),
                 max_radius: int = 24) -> None:
        super().__init__(cfg)
        self.kernel_bank = ButterworthKernelBank(max_radius)


# --- the authors' checkpoints -------------------------------------------------------------------

_GENERATOR_RENAMES = [
    (r"^head\.0\.", "stem.conv."),
    (r"^tail_hard\.0\.", "tail."),
    (r"^unetdown4\.maxpool_conv\.1\.double_conv\.0\.", "down4.conv.conv1."),
    (r"^unetdown4\.maxpool_conv\.1\.double_conv\.2\.", "down4.conv.conv2."),
    (r"^unetdown2\.maxpool_conv\.1\.double_conv\.0\.", "down2.conv.conv1."),
    (r"^unetdown2\.maxpool_conv\.1\.double_conv\.2\.", "down2.conv.conv2."),
    (r"^unetup2\.conv\.double_conv\.0\.", "up2.conv.conv1."),
    (r"^unetup2\.conv\.double_conv\.2\.", "up2.conv.conv2."),
    (r"^unetup4\.up\.0\.", "up4.up1."),
    (r"^unetup4\.up\.1\.double_conv\.0\.", "up4.conv.conv1."),
    (r"^unetup4\.up\.1\.double_conv\.2\.", "up4.conv.conv2."),
    (r"^unetup4\.up\.2\.", "up4.up2."),
]
# declared in the authors' generator but never used in its forward pass
_GENERATOR_UNUSED = ("connect.", "connect2.")


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None
                         ) -> dict[str, torch.Tensor]:
    """Authors' generator / defocus-net names -> ours; our own checkpoints pass unchanged.

    For `DefocusMapNet`, the authors' checkpoint has no kernel bank (theirs is fixed, inside
    their loss); when ``model`` is given its Butterworth initialisation is filled in.
    """
    if not any(k.startswith("tail_hard.") for k in state_dict):
        return dict(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(_GENERATOR_UNUSED):
            continue
        new = convert_official_body_key(key)
        if new is None:
            new = key
            for pattern, repl in _GENERATOR_RENAMES:
                new = re.sub(pattern, repl, new)
        out[new] = value
    if isinstance(model, DefocusMapNet):
        for key, value in model.kernel_bank.state_dict().items():
            out.setdefault(f"kernel_bank.{key}", value.detach().clone())
    return out


CONFIGS: dict[str, object] = {
    "defocusgan_generator": DefocusGANCfg(),
    "defocusgan_generator_small": DefocusGANCfg(width=32, residual=True),
    "defocusgan_generator_test": DefocusGANCfg(width=8, branches=(1, 4), reduction=4, thresholds=(0.0, 3.0)),
    "defocusgan_defocusnet": BaMBNetCfg(task="coc", branches=(1, 4, 4, 7)),
    "defocusgan_defocusnet_small": BaMBNetCfg(task="coc", width=32, branches=(1, 4, 4, 7), coc_scale=8.0),
    "defocusgan_defocusnet_test": BaMBNetCfg(task="coc", width=8, branches=(1, 4), reduction=4,
                                             thresholds=(0.0, 3.0)),
}


# --- registry entrypoints ------------------------------------------------------------------------

_PAPER = "DefocusGAN (Zhai et al. 2022)"

register_family(Family(
    name="defocusgan", paper=_PAPER,
    defaults={"deblur_single": "defocusgan_generator", "coc": "defocusgan_defocusnet"},
    official_keys=lambda sd: any(k.startswith("tail_hard.") for k in sd), checkpoint_filter=checkpoint_filter_fn,
    official_colour_order="BGR", training="dpcli.train.defocusgan",
    weights_source="github.com/qylen/DefocusGAN (DPDD generator and defocus-map net)",
    licence="the authors' terms"))


def _cfg(name: str, kwargs: dict):
    from dataclasses import replace

    return replace(CONFIGS[name], **kwargs) if kwargs else CONFIGS[name]


def _gen(**info):
    return register_model(family="defocusgan", task="deblur_single", recipe="C", official_recipe="CC",
                          paper=_PAPER, **info)


def _dmap(**info):
    return register_model(family="defocusgan", task="coc", recipe="LR", official_recipe="LR",
                          paper=_PAPER, **info)


@_gen(cfg=CONFIGS["defocusgan_generator"])
def defocusgan_generator(**kwargs) -> DefocusGANGenerator:
    """Paper-size generator (width 64, branches 1/4/7/10): the authors' released architecture."""
    return DefocusGANGenerator(_cfg("defocusgan_generator", kwargs))


@_gen(cfg=CONFIGS["defocusgan_generator_small"])
def defocusgan_generator_small(**kwargs) -> DefocusGANGenerator:
    """Width-32 residual generator (starts as the identity), trainable on CPUs."""
    return DefocusGANGenerator(_cfg("defocusgan_generator_small", kwargs))


@_gen(cfg=CONFIGS["defocusgan_generator_test"])
def defocusgan_generator_test(**kwargs) -> DefocusGANGenerator:
    """Tiny generator for tests."""
    return DefocusGANGenerator(_cfg("defocusgan_generator_test", kwargs))


@_dmap(cfg=CONFIGS["defocusgan_defocusnet"])
def defocusgan_defocusnet(max_radius: int = 24, **kwargs) -> DefocusMapNet:
    """Paper-size defocus-map estimator (branches 1/4/4/7) with its learnable kernel bank."""
    return DefocusMapNet(_cfg("defocusgan_defocusnet", kwargs), max_radius)


@_dmap(cfg=CONFIGS["defocusgan_defocusnet_small"])
def defocusgan_defocusnet_small(max_radius: int = 24, **kwargs) -> DefocusMapNet:
    """Width-32 defocus-map estimator."""
    return DefocusMapNet(_cfg("defocusgan_defocusnet_small", kwargs), max_radius)


@_dmap(cfg=CONFIGS["defocusgan_defocusnet_test"])
def defocusgan_defocusnet_test(max_radius: int = 8, **kwargs) -> DefocusMapNet:
    """Tiny defocus-map estimator for tests."""
    return DefocusMapNet(_cfg("defocusgan_defocusnet_test", kwargs), max_radius)


@register_model(family="defocusgan", task="discriminator", recipe="C", official_recipe="C", paper=_PAPER)
def defocusgan_discriminator(in_chans: int = 3, width: int = 64, n_layers: int = 3) -> PatchDiscriminator:
    """PatchGAN discriminator (3 layers) used to train the generator."""
    return PatchDiscriminator(in_chans, width, n_layers)


@register_model(family="defocusgan", task="discriminator", recipe="C", official_recipe="C", paper=_PAPER)
def defocusgan_discriminator_test(in_chans: int = 3, width: int = 8, n_layers: int = 3) -> PatchDiscriminator:
    """Tiny discriminator for tests."""
    return PatchDiscriminator(in_chans, width, n_layers)
