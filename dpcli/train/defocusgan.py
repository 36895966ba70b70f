"""DefocusGAN training (`000_*` "Implementation details"): (1) the defocus-map net with its learnable
blur-kernel bank, trained alternately; (2) the generator with annealed defocus-mask guidance against
a PatchGAN critic (defocus-weighted adversarial loss, Eq. 7, WGAN-GP penalty), L1 content loss and
VGG conv3_3 perceptual loss: L_G = L_c + 0.012 L_p + 0.002 L_adv, Adam(0.9, 0.999).

Paper schedule (DPDD, batch 4): map net 10 epochs with the kernels fixed, then alternate kernels /
map every 5 epochs up to 30 epochs, lr 2e-5, lambda 1e-5 (a summed TV; ours is a mean); generator
512 px crops, lr 2e-4 halved every 30 epochs, guidance annealed over 2e4 iterations, ~90 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dpcli.errors import DpError
from dpcli.train.bambnet import _pair, build_bambnet, load_frozen
from dpcli.train.data import Sample, to_device
from dpcli.train.loop import StageTrainer
from dpcli.train.stages import StageSpec, register_stage
from dpcli.train.losses import (
    DefocusReblurLoss,
    PerceptualLoss,
    critic_loss,
    defocus_adversarial_loss,
    l1_loss,
)


# ------------------------------------------------------------------------------ stage 1: defocus map

@dataclass
class DefocusMapStageConfig:
    model: str = "defocusgan_defocusnet_small"
    lr: float = 2e-5
    lam: float = 0.01
    map_first_steps: int = 1000  # map net alone, kernels fixed (paper: 10 epochs)
    alternate_every: int = 500  # then kernels / map alternate (paper: every 5 epochs)
    srgb: bool = True
    dp_terms: bool = True
    # ours, not the paper's (DPDD has no maps): + weight * L1(map - GT map) in px where the data has
    # GT maps (synthetic scenes); the unsupervised loss alone moved our CPU-sized net too slowly
    supervised_weight: float = 0.0


def map_error_px(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean |error| (px) of a per-channel map (B, C, H, W) against a GT map (B, 1, H, W)."""
    return (pred.mean(1, keepdim=True) - gt).abs().mean()


class DefocusMapTrainer(StageTrainer):
    """Stage 1: defocus-map net + learnable kernel bank, reblur loss + lambda * TV, alternating."""

    name = "defocusgan-defocus"
    # the kernel bank is used by the loss, outside the net's forward pass, which DDP's reducer
    # cannot track: gradients of this stage are averaged by hand instead
    manual_sync = ("defocus",)

    def __init__(self, cfg: DefocusMapStageConfig, device: torch.device, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        self.cfg = cfg
        net = build_bambnet(cfg.model).to(device)
        self.nets["defocus"] = net
        self.loss = DefocusReblurLoss(net.kernel_bank, cfg.lam, cfg.srgb, cfg.dp_terms)
        bank_params = list(net.kernel_bank.parameters())
        ids = {id(p) for p in bank_params}
        self.optimizers["map"] = torch.optim.Adam([p for p in net.parameters() if id(p) not in ids], lr=cfg.lr)
        self.optimizers["kernels"] = torch.optim.Adam(bank_params, lr=cfg.lr)

    def phase(self, step: int) -> str:
        """'map' for the first steps, then 'kernels' and 'map' alternate."""
        if step < self.cfg.map_first_steps:
            return "map"
        return "kernels" if ((step - self.cfg.map_first_steps) // max(self.cfg.alternate_every, 1)) % 2 == 0 else "map"

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        phase = self.phase(step)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(phase == "map"), self.autocast():  # kernel phase: the map is a constant
            defocus = self.run["defocus"](_pair(batch))
        out = self.loss(defocus.float(), batch["target"], batch["combined"], batch.get("left"), batch.get("right"))
        if self.cfg.supervised_weight > 0 and "defocus" in batch:
            supervised = map_error_px(defocus.float(), batch["defocus"])
            out["supervised_px"] = supervised.detach()
            out["loss"] = out["loss"] + self.cfg.supervised_weight * supervised
        out["loss"].backward()
        self.allreduce_grads("defocus")
        self.optimizers[phase].step()
        return {k: float(v.detach()) for k, v in out.items()} | {"phase_kernels": float(phase == "kernels")}

    @torch.no_grad()
    def validate(self, batches: list[Sample], step: int) -> dict[str, float]:
        geo, err = [], []
        for batch in batches:
            batch = to_device(batch, self.device)
            d = self.nets["defocus"](_pair(batch)).float()
            geo.append(float(self.loss(d, batch["target"], batch["combined"], batch.get("left"),
                                       batch.get("right"))["geometric"]))
            if "defocus" in batch:
                err.append(float(map_error_px(d, batch["defocus"])))
        out = {"val_geometric": float(np.mean(geo))}
        if err:
            out["val_defocus_mae_px"] = float(np.mean(err))
        return out


# ------------------------------------------------------------------------------ stage 2: generator

@dataclass
class GeneratorStageConfig:
    model: str = "defocusgan_generator_small"
    defocus_model: str = "defocusgan_defocusnet_small"
    defocus_source: str = "auto"  # net | gt | auto
    defocus_weights: Path | None = None
    lr: float = 2e-4
    lr_halve_every: int = 0
    alpha: float = 0.012  # perceptual
    beta: float = 0.002  # defocus adversarial
    gp_weight: float = 10.0
    anneal_steps: int = 20_000
    disc_width: int = 64
    r_max: float = 25.0
    perceptual: bool = True


class DefocusGANGeneratorTrainer(StageTrainer):
    """Stage 2: generator on the combined image, PatchGAN critic, L_c + alpha L_p + beta L_adv."""

    name = "defocusgan-generator"
    manual_sync = ("critic",)

    def __init__(self, cfg: GeneratorStageConfig, device: torch.device, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        from dpcli.models.defocusgan import PatchDiscriminator

        self.cfg = cfg
        gen = build_bambnet(cfg.model).to(device)
        self.nets["generator"] = gen
        self.nets["critic"] = PatchDiscriminator(gen.cfg.out_chans, cfg.disc_width).to(device)
        self.defocus_net = None
        if cfg.defocus_source == "net" or (cfg.defocus_source == "auto" and cfg.defocus_weights is not None):
            self.defocus_net = load_frozen(cfg.defocus_model, cfg.defocus_weights).to(device)
        self.dp = self.defocus_net is not None  # DP views feed the map net: keep DP augmentation rules
        self.perceptual = PerceptualLoss().to(device) if cfg.perceptual and cfg.alpha > 0 else None
        betas = (0.9, 0.999)
        self.optimizers["generator"] = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=betas)
        self.optimizers["critic"] = torch.optim.Adam(self.nets["critic"].parameters(), lr=cfg.lr, betas=betas)
        if cfg.lr_halve_every:
            for key in ("generator", "critic"):
                self.schedulers[key] = torch.optim.lr_scheduler.StepLR(self.optimizers[key], cfg.lr_halve_every, 0.5)

    def defocus_of(self, batch: Sample) -> Tensor:
        if self.defocus_net is not None:
            with torch.no_grad():
                return self.defocus_net(_pair(batch)).float()
        if "defocus" not in batch:
            raise DpError("DefocusGAN generator training needs defocus maps: give --defocus-weights (a trained "
                          "defocus-map net) or data with NAME_defocus.tiff maps")
        return batch["defocus"]

    def guide_weight(self, step: int) -> float:
        from dpcli.models.blocks import mask_weight

        return mask_weight(step, self.cfg.anneal_steps)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        gen, critic = self.run["generator"], self.run["critic"]
        w = self.guide_weight(step)
        defocus = self.defocus_of(batch)
        target = batch["target"]
        with self.autocast():
            fake = gen(batch["combined"], defocus if w > 0 else None, w).float()
        # critic step (WGAN-GP, defocus-weighted)
        opt_d = self.optimizers["critic"]
        opt_d.zero_grad(set_to_none=True)
        d_out = critic_loss(critic, target, fake, defocus, self.cfg.gp_weight, self.cfg.r_max)
        d_out["loss"].backward()
        self.allreduce_grads("critic")
        opt_d.step()
        # generator step
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        content = l1_loss(fake, target)
        adv = defocus_adversarial_loss(critic, fake, defocus, self.cfg.r_max)
        loss = content + self.cfg.beta * adv
        values = {"content": float(content.detach()), "adv": float(adv.detach())}
        if self.perceptual is not None:
            perc = self.perceptual(fake, target)
            loss = loss + self.cfg.alpha * perc
            values["perceptual"] = float(perc.detach())
        loss.backward()
        opt_g.step()
        for sched in self.schedulers.values():
            sched.step()
        return values | {"loss": float(loss.detach()), "critic": float(d_out["loss"].detach()),
                         "wasserstein": float(d_out["wasserstein"]), "mask_weight": w}

    @torch.no_grad()
    def predict(self, batch: Sample) -> Tensor:
        return self.nets["generator"](batch["combined"]).float()  # inference: single image, no map


# --- stages and their presets (dpdeblur train defocusgan --stage NAME --config test|small|paper) ---------

DEFOCUSGAN_DEFOCUS_PRESETS = {
    "test": dict(
        stage=dict(model="defocusgan_defocusnet_test", lr=1e-3, map_first_steps=6, alternate_every=3),
        loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    "small": dict(
        stage=dict(model="defocusgan_defocusnet_small", lr=1e-4, map_first_steps=5000, alternate_every=2500),
        loop=dict(steps=15_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    "paper": dict(  # map 10 epochs, then alternate every 5 to 30; batch 4
        stage=dict(model="defocusgan_defocusnet", lr=2e-5, map_first_steps="10e", alternate_every="5e"),
        loop=dict(epochs=30, batch_size=4, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
}
DEFOCUSGAN_GENERATOR_PRESETS = {
    "test": dict(
        stage=dict(model="defocusgan_generator_test", defocus_model="defocusgan_defocusnet_test", lr=1e-3,
                   anneal_steps=8, disc_width=8),
        loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    "small": dict(
        stage=dict(model="defocusgan_generator_small", defocus_model="defocusgan_defocusnet_small", lr=2e-4,
                   anneal_steps=10_000, lr_halve_every=10_000, disc_width=32),
        loop=dict(steps=30_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    "paper": dict(  # 512 px, lr 2e-4 halved per 30 epochs, ~90 epochs, batch 4
        stage=dict(model="defocusgan_generator", defocus_model="defocusgan_defocusnet", lr=2e-4,
                   anneal_steps=20_000, lr_halve_every="30e", disc_width=64),
        loop=dict(epochs=90, batch_size=4, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
}


def _generator_uses_dp(options, has_maps: bool) -> bool:
    """DP views drive the generator when its defocus maps come from the DP defocus-map net."""
    source = options.get("defocus_source", "auto")
    return source == "net" or (source == "auto" and options.get("defocus_weights") is not None) or not has_maps


def _generator_flags(flags) -> dict:
    return {"defocus_weights": flags.get("defocus_weights"), "defocus_source": flags.get("coc_source"),
            "r_max": flags.get("r_max")}


register_stage(StageSpec("defocusgan", "defocus", DefocusMapTrainer, DefocusMapStageConfig,
                         DEFOCUSGAN_DEFOCUS_PRESETS))
register_stage(StageSpec("defocusgan", "generator", DefocusGANGeneratorTrainer, GeneratorStageConfig,
                         DEFOCUSGAN_GENERATOR_PRESETS, default=True, uses_dp=_generator_uses_dp,
                         flags=_generator_flags))
