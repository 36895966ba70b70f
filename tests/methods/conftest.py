"""Synthetic DP pairs of known defocus sign for the method and orientation tests."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def render_pair(radius: float, colour: bool = False, size: tuple[int, int] = (96, 128), seed: int = 0,
                in_focus_part: bool = False):
    """(sharp, left, right) linear float32 (C, H, W): a natural texture blurred with the RDPD DP
    kernels of one signed radius (docs/CONVENTIONS.md orientation: r > 0 puts the left view's mass to +x);
    ``in_focus_part``: the left third of the frame in focus (a subject in focus beside a blurred
    background, as a single-image network is for)."""
    from skimage import data

    from dpcli.optics.conv import blur
    from dpcli.optics.kernels import dp_kernels

    h, w = size
    sources = [data.camera(), data.astronaut().mean(-1), data.coffee().mean(-1)]
    image = np.asarray(sources[seed % len(sources)], np.float32) / 255.0
    y0, x0 = 100 + 7 * seed, 120 + 11 * seed
    sharp = image[y0:y0 + h, x0:x0 + w][None] ** 2.2  # linear light
    if colour:
        sharp = np.concatenate([sharp, sharp ** 1.2, sharp ** 0.8])
    kl, kr = dp_kernels(torch.tensor([float(radius)]))
    t = torch.from_numpy(np.ascontiguousarray(sharp))[None]
    left = blur(t, kl[:, None]).numpy()[0]
    right = blur(t, kr[:, None]).numpy()[0]
    if in_focus_part:
        left[..., :w // 3], right[..., :w // 3] = sharp[..., :w // 3], sharp[..., :w // 3]
    return sharp, left, right


def render_disc_photo(radius: float, colour: bool = False, size: tuple[int, int] = (192, 256)):
    """(sharp, blurred) linear float32 (C, H, W): a dead-leaves photo under one uniform disc blur."""
    from dpcli.optics.conv import blur
    from dpcli.optics.kernels import disk_kernel
    from dpcli.synth.deadleaves import dead_leaves

    sharp = dead_leaves(max(size), seed=11)[:, :size[0], :size[1]]
    sharp = np.ascontiguousarray(sharp if colour else sharp.mean(0, keepdims=True))
    blurred = blur(torch.from_numpy(sharp)[None], disk_kernel(torch.tensor([float(radius)]))[:, None])[0].numpy()
    return sharp, blurred


@pytest.fixture(scope="session")
def phone_pair():
    return render_pair(4.0)


@pytest.fixture(scope="session")
def dslr_pair():
    return render_pair(4.0, colour=True, seed=1)


def shipped_pair_network(domain: str = "dslr") -> str:
    """The name of some shipped DP-pair network meant for ``domain`` (whichever ships: the tests that
    need a real network do not pin which); skips the test where none does."""
    from dpcli.methods import get_method
    from dpcli.methods.network import shipped_network_names

    for name in shipped_network_names():
        method = get_method(name, tta=False)
        if method.needs_pair and domain in method.domains:
            return name
    pytest.skip(f"no DP-pair network for {domain} ships")
