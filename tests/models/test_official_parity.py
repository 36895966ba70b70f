"""Our networks compute the authors' functions: load their state dicts, match their outputs.

Reference data (never in the repo): ../shared/reference/<net>/{official_state_dict,io}.safetensors,
made with the authors' classes (seed 0, eval, CPU float32). Criterion: relative L2 error < 1e-5.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dpcli.api import Deblurrer, run_official_input
from dpcli.models.loading import load_model

CASES = {
    # folder: (family, task, arch) -- arch given because BaMBNet's two nets share their keys
    "bambnet_deblur": ("bambnet", "deblur_pair", "bambnet_deblur"),
    "bambnet_coc": ("bambnet", "coc", "bambnet_coc"),
    "defocusgan_generator": ("defocusgan", "deblur_single", "defocusgan_generator"),
    "defocusgan_defocusnet": ("defocusgan", "coc", "defocusgan_defocusnet"),
}


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("folder", sorted(CASES))
def test_official_output_reproduced(reference_dir: Path, folder: str) -> None:
    family, task, arch = CASES[folder]
    loaded = load_model(family, task=task, weights=reference_dir / folder / "official_state_dict.safetensors",
                        arch=arch)
    assert loaded.official and loaded.colour_order == "BGR"
    io = load_file(str(reference_dir / folder / "io.safetensors"))
    out = run_official_input(loaded, io["official_input"])
    assert out.shape == io["official_output"].shape
    assert rel_l2(out, io["official_output"]) < 1e-5


def test_generator_ignores_mask_channels_at_inference(reference_dir: Path) -> None:
    # the authors feed cat(C, C); the second copy only built training masks
    io = load_file(str(reference_dir / "defocusgan_generator" / "io.safetensors"))
    assert torch.equal(io["official_input"][:, :3], io["official_input"][:, 3:])
    assert torch.allclose(io["official_input"][:, :3], io["combined"])


def test_api_swaps_bgr_for_the_authors_weights(reference_dir: Path) -> None:
    """A user's RGB pair through the API equals the authors' net on the BGR arrays."""
    io = load_file(str(reference_dir / "bambnet_deblur" / "io.safetensors"))
    loaded = load_model("bambnet", task="deblur_pair", arch="bambnet_deblur",
                        weights=reference_dir / "bambnet_deblur" / "official_state_dict.safetensors")
    session = Deblurrer(loaded, device="cpu", tile=0, channels_last=False)
    # io's views are in the authors' (BGR) order: the user holds them as RGB = flipped
    rgb_left, rgb_right = io["left"].flip(1), io["right"].flip(1)
    out_rgb = session.deblur_pair(rgb_left, rgb_right)
    assert rel_l2(out_rgb.flip(1), io["official_output"]) < 1e-5
    # without the swap the result would differ clearly
    assert rel_l2(out_rgb, io["official_output"]) > 1e-3
