"""BlurNet training (ours): where one image is visibly out of focus, from the synthetic corpus.

Labels (:func:`focus_labels`), per pixel, only where the answer shows in the picture:
*blurred* where the scene is at least ``BLURRED_PX`` out of focus and the blur changed the image
visibly (:func:`detail`, the local RMS of the all-in-focus image minus the blurred one, at least
``VISIBLE``); *sharp* where it is within ``IN_FOCUS_PX`` and the all-in-focus image has visible
detail there. Everything else (flat regions, the 0.5-1.5 px band) is left out of the loss: a flat
region has nothing to undo whether it is in focus or not. Synthetic scenes give the optics alone
(before the camera: no noise, pipeline or compression), so the labels say what blur did and
nothing else. Loss: binary cross-entropy on the labelled pixels (ours: no paper).

Needs ``--data synth`` (the scenes' optics and defocus maps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dpcli.errors import DpError
from dpcli.optics import band_detail, linear_to_srgb
from dpcli.train.data import Sample, rot90
from dpcli.train.loop import StageTrainer
from dpcli.train.stages import StageSpec, register_stage

IN_FOCUS_PX, BLURRED_PX = 0.5, 1.5  # |defocus radius|
VISIBLE = 4 / 255  # sRGB: the least local RMS of detail (or of its loss) that counts as visible
# px: detail band-passed between NOISE_SIGMA and DRIFT_SIGMA (not pixel noise, not slow shading), RMS window radius
NOISE_SIGMA, DRIFT_SIGMA, WINDOW = 1.0, 8.0, 3


@dataclass
class BlurStageConfig:
    model: str = "blurnet_small"
    lr: float = 1e-3
    # optimiser updates per batch, each on another of the 8 rotations / mirrors of it: rendering the
    # scenes is the slow part, a small net's update is cheap
    repeats: int = 1
    srgb: bool = True  # how the data is encoded (the runner says); BlurNet reads sRGB values


def detail(image: Tensor, reference: Tensor | None = None) -> Tensor:
    """Local RMS (B, 1, H, W) of the band-passed ``image`` (sRGB values, (B, C, H, W)), or of
    ``image - reference`` when given: the detail there, or the detail lost."""
    diff = image.float() - (reference.float() if reference is not None else 0.0)
    return band_detail(diff, DRIFT_SIGMA, WINDOW, fine=NOISE_SIGMA)


def focus_labels(sharp: Tensor, blurred: Tensor, defocus: Tensor) -> tuple[Tensor, Tensor]:
    """(label, weight), both (B, 1, H, W): label 1 = visibly out of focus, 0 = in focus with visible
    detail; weight 1 where the label holds, 0 where the picture cannot tell. ``sharp``/``blurred``:
    the scene's optics (linear, (B, C, H, W)); ``defocus``: signed radius (B, 1, H, W) px."""
    s, b = linear_to_srgb(sharp.clamp(0, 1)), linear_to_srgb(blurred.clamp(0, 1))
    r = defocus.abs().amax(dim=1, keepdim=True)
    out = (r >= BLURRED_PX) & (detail(s, b) >= VISIBLE)
    infocus = (r <= IN_FOCUS_PX) & (detail(s) >= VISIBLE)
    return out.float(), (out | infocus).float()


def _dihedral(batch: Sample, k: int) -> Sample:
    """One of the 8 rotations / mirrors of every (B, C, H, W) image of a batch (a single image has
    no left and right: all 8 are fair)."""
    out = rot90(batch, k % 4)
    return {key: v.flip(-1) for key, v in out.items()} if k >= 4 else out


class BlurNetTrainer(StageTrainer):
    name = "blurnet"
    dp = False

    def __init__(self, cfg: BlurStageConfig, device: torch.device, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        from dpcli.models.loading import create_model

        self.cfg = cfg
        self.nets["blur"] = create_model(cfg.model).to(device)
        self.optimizers["blur"] = torch.optim.Adam(self.nets["blur"].parameters(), lr=cfg.lr)

    @staticmethod
    def _labels(batch: Sample) -> tuple[Tensor, Tensor]:
        if "optics_sharp" not in batch or "defocus" not in batch:
            raise DpError("BlurNet training needs the synthetic scenes' optics: use --data synth")
        return focus_labels(batch["optics_sharp"], batch["optics_combined"], batch["defocus"])

    def _loss(self, batch: Sample, net) -> tuple[Tensor, Tensor, Tensor]:
        """(loss, logits, (label, weight)) of a batch."""
        label, weight = self._labels(batch)
        image = batch["combined"] if self.cfg.srgb else linear_to_srgb(batch["combined"].clamp(0, 1))
        with self.autocast():
            logits = net(image, logits=True).float()
        bce = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
        return (bce * weight).sum() / weight.sum().clamp(min=1.0), logits, (label, weight)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        opt = self.optimizers["blur"]
        losses = []
        for k in range(max(self.cfg.repeats, 1)):
            opt.zero_grad(set_to_none=True)
            loss = self._loss(batch if k == 0 else _dihedral(batch, (step * 7 + k) % 8), self.run["blur"])[0]
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return {"loss": float(np.mean(losses))}

    @torch.no_grad()
    def validate(self, batches: list[Sample], step: int) -> dict[str, float]:
        """Loss and accuracy on the labelled pixels, and how often an in-focus pixel is called
        blurred (what harms a sharp photo)."""
        losses, hits, total, false_blur, sharp_total = [], 0.0, 0.0, 0.0, 0.0
        for batch in batches:
            loss, logits, (label, weight) = self._loss(self.to_device(batch), self.nets["blur"])
            losses.append(float(loss))
            said = (logits > 0).float()
            hits += float(((said == label).float() * weight).sum())
            total += float(weight.sum())
            false_blur += float((said * (1 - label) * weight).sum())
            sharp_total += float(((1 - label) * weight).sum())
        return {"val_loss": float(np.mean(losses)), "val_accuracy": hits / max(total, 1.0),
                "val_sharp_called_blurred": false_blur / max(sharp_total, 1.0)}


BLURNET_PRESETS = {
    "test": dict(stage=dict(model="blurnet_test", lr=1e-2),
                 loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    "small": dict(stage=dict(model="blurnet_small", lr=1e-3, repeats=4),
                  loop=dict(steps=20_000, batch_size=8, crop=128, val_every=250, ckpt_every=250)),
}


def _single_image(options, has_maps: bool) -> bool:
    return False  # one image: 90-degree rotations are fair augmentations


register_stage(StageSpec("blurnet", "blur", BlurNetTrainer, BlurStageConfig, BLURNET_PRESETS, default=True,
                         uses_dp=_single_image, synth_options={"optics": True}))
