"""Tiny DPDD-layout folders rendered with the project's DP kernels, for the training tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def texture(size: int, gen: torch.Generator) -> torch.Tensor:
    """(3, size, size) in [0.05, 0.95]: multi-scale noise with hard-edged blobs (plenty of gradients)."""
    img = torch.zeros(3, size, size)
    for scale in (4, 8, 16):
        img += F.interpolate(torch.rand(1, 3, scale, scale, generator=gen), size=(size, size),
                             mode="bilinear", align_corners=False)[0] / 3
    for _ in range(6):
        y, x = torch.randint(0, size - 4, (2,), generator=gen).tolist()
        s = int(torch.randint(3, max(4, size // 3), (1,), generator=gen))
        img[:, y:y + s, x:x + s] = torch.rand(3, 1, 1, generator=gen)
    return 0.05 + 0.9 * img.clamp(0, 1)


def render_layers(sharp: torch.Tensor, masks: list[torch.Tensor], radii: list[float]):
    """Left, right, combined views of a layered scene (linear light, no occlusion modelling)."""
    from dpcli.optics import blur, combined_kernel, dp_kernels

    size = 2 * int(np.ceil(max(abs(r) for r in radii))) + 3
    left = right = comb = 0
    for mask, r in zip(masks, radii):
        layer = (sharp * mask)[None]
        kl, kr = dp_kernels(torch.tensor([r]), size=size)
        kc = combined_kernel(torch.tensor([r]), size=size)
        left = left + blur(layer, kl[:, None])
        right = right + blur(layer, kr[:, None])
        comb = comb + blur(layer, kc[:, None])
    return left[0], right[0], comb[0]


def make_dpdd(root: Path, n_train: int = 4, n_val: int = 2, size: int = 48, seed: int = 0,
              radii: tuple[float, float] = (1.0, 4.0)) -> Path:
    """DPDD layout with 16-bit sRGB PNGs and NAME_defocus.tiff maps (signed radius)."""
    from dpcli.io.images import write_image
    from dpcli.optics import linear_to_srgb

    gen = torch.Generator().manual_seed(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for i in range(count):
            name = f"s{i:03d}"
            sharp = texture(size, gen)
            fg = torch.zeros(1, size, size)
            y, x = torch.randint(0, size // 2, (2,), generator=gen).tolist()
            fg[:, y:y + size // 2, x:x + size // 2] = 1
            r_bg = float(radii[1]) * (1 if i % 2 == 0 else -1)
            left, right, comb = render_layers(sharp, [1 - fg, fg], [r_bg, float(radii[0])])
            defocus = (1 - fg) * r_bg + fg * float(radii[0])
            enc = lambda t: linear_to_srgb(t.clamp(0, 1)).numpy()  # noqa: E731
            write_image(root / f"{split}_l/source/{name}_L.png", enc(left), 16)
            write_image(root / f"{split}_r/source/{name}_R.png", enc(right), 16)
            write_image(root / f"{split}_c/source/{name}.png", enc(comb), 16)
            write_image(root / f"{split}_c/target/{name}.png", enc(sharp), 16)
            write_image(root / f"{split}_c/source/{name}_defocus.tiff", defocus.numpy(), 32)
    return root


@pytest.fixture(scope="session")
def tiny_dpdd(tmp_path_factory) -> Path:
    return make_dpdd(tmp_path_factory.mktemp("dpdd"))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and leave the other core to other jobs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def batch(tiny_dpdd):
    """Two fixed 32 px training samples of the tiny DPDD folder (no flips): the stage tests' batch."""
    from dpcli.train.data import AugmentConfig, FolderDataset, collate

    ds = FolderDataset(tiny_dpdd, "train", AugmentConfig(crop=32, hflip=False, vflip=False))
    return collate([ds[(0, 1)], ds[(1, 2)]])


def run_steps(trainer, batch, steps: int, key: str = "loss") -> list[float]:
    """``steps`` training steps of ``trainer`` on one batch: the value of ``key`` after each."""
    trainer.distribute(trainer.dist)
    trainer.train_mode(True)
    return [trainer.train_step(batch, i)[key] for i in range(steps)]


def improves(values: list[float], factor: float) -> bool:
    """The mean of the last three values is under ``factor`` times that of the first three."""
    return float(np.mean(values[-3:])) < factor * float(np.mean(values[:3]))


def tiny_request(data: Path, out: Path, **kw):
    """A TrainRequest of the BaMBNet deblur stage on ``data`` (test configuration, GT CoC, quiet)."""
    from dpcli.train.request import TrainRequest

    base = dict(model="bambnet", stage="deblur", data=str(data), config="test", out=out, val_count=2, quiet=True,
                stage_options={"coc_source": "gt"})
    return TrainRequest(**(base | kw))
