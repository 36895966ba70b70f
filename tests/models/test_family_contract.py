"""One contract over every registered architecture (timm's ``tests/test_models.py`` over
``list_models()``): it builds; its forward keeps the size at two sizes; tiled inference is close to
the full frame; bf16 runs (where the module says it supports it); its weights survive a
save/load round trip; and the loader recognises the architecture from its own state dict.

Nothing here names a family: a new family's architectures are checked by registering them. The
``*_test`` configurations run in the fast suite, the full-size ones are marked slow. Tiles are
compared with random weights and global pooling (channel attention), so "close" is loose here;
the tiler's exactness is tests/test_tiling.py's.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dpcli.models import create_model, list_models, model_info
from dpcli.models.loading import detect, save_weights
from dpcli.tiling import run_tiled

IMAGE_TASKS = ("deblur_pair", "deblur_single", "coc", "blur")  # image in, image-sized map out


def _archs(image_only: bool = False) -> list:
    names = [n for n in list_models() if not image_only or model_info(n).task in IMAGE_TASKS]
    return [pytest.param(n, marks=() if n.endswith("_test") else pytest.mark.slow) for n in names]


def _input(net: torch.nn.Module, h: int, w: int) -> torch.Tensor:
    """A smooth (1, in_chans, h, w) image in [0, 1] (fixed seed)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, net.cfg.in_chans, h + 8, w + 8, generator=g)
    return F.avg_pool2d(x, 9, 1)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().mean() / b.float().abs().mean().clamp_min(1e-8))


@pytest.mark.parametrize("arch", _archs(image_only=True))
def test_forward_keeps_the_size_at_two_sizes(arch: str) -> None:
    net = create_model(arch).eval()
    m = net.tiling.multiple_of
    for h, w in ((2 * m, 3 * m), (3 * m, 2 * m)):
        h, w = max(h, 32), max(w, 32)
        with torch.inference_mode():
            out = net(_input(net, h, w))
        assert out.shape[0] == 1 and out.shape[-2:] == (h, w) and bool(torch.isfinite(out).all()), arch


@pytest.mark.parametrize("arch", _archs(image_only=True))
def test_tiled_is_close_to_the_full_frame(arch: str) -> None:
    net = create_model(arch).eval()
    spec = net.tiling
    h, w = 4 * max(spec.multiple_of, 16), 6 * max(spec.multiple_of, 16)
    x = _input(net, h, w)
    with torch.inference_mode():
        full = net(x)
        one = run_tiled(net, x, tile=max(h, w), overlap=spec.overlap, multiple_of=spec.multiple_of)
        tiled = run_tiled(net, x, tile=w // 2, overlap=spec.overlap, multiple_of=spec.multiple_of)
    assert one.shape == tiled.shape == full.shape
    assert _rel(one, full) < 1e-5, "one tile covering the frame is the full frame"
    assert _rel(tiled, full) < 0.3, f"{arch}: tiles differ from the full frame by {_rel(tiled, full):.3f}"


@pytest.mark.parametrize("arch", _archs(image_only=True))
def test_bf16_runs_where_supported(arch: str) -> None:
    net = create_model(arch).eval()
    if not getattr(net, "supports_bf16", False):
        pytest.skip(f"{arch} does not support bf16")
    m = max(net.tiling.multiple_of, 16)
    x = _input(net, 2 * m, 2 * m)
    with torch.inference_mode():
        full = net(x)
        half = run_tiled(net, x, tile=0, overlap=0, multiple_of=net.tiling.multiple_of, precision="bf16")
    assert half.dtype == torch.float32 and _rel(half, full) < 0.05


@pytest.mark.parametrize("arch", _archs())
def test_weights_round_trip_and_the_architecture_is_recognised(arch: str, tmp_path) -> None:
    torch.manual_seed(0)
    net = create_model(arch)
    path = save_weights(net, arch, tmp_path / f"{arch}.safetensors")
    back = create_model(arch, weights=path).state_dict()
    assert all(torch.equal(v, back[k]) for k, v in net.state_dict().items()) and set(back) == set(net.state_dict())
    if model_info(arch).task == "discriminator":
        return  # never given to run: the loader does not look for discriminators
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = detect(net.state_dict())
    fits = [d for d in found if {k: tuple(v.shape) for k, v in create_model(d.arch, **d.kwargs).state_dict().items()}
            == shapes]
    assert fits and all(model_info(d.arch).family == model_info(arch).family for d in fits), (arch, found)
