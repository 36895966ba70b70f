"""Tiled inference (dpcli.tiling): exact reassembly, seamless blending, batching, local pooling."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dpcli.errors import DpError, ModelError
from dpcli.tiling import (
    LocalAvgPool2d,
    TilingSpec,
    blend_ramp,
    effective_receptive_field,
    pad_to_multiple,
    run_model_tiled,
    run_tiled,
    tile_grid,
    use_local_pooling,
)


def tiny_net(width: int = 4, seed: int = 0) -> nn.Module:
    """Two 3x3 convs: receptive-field radius 2, smaller than the overlaps used below."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1)).eval()


def full_frame(net: nn.Module, x: torch.Tensor, multiple_of: int) -> torch.Tensor:
    with torch.no_grad():
        return net(pad_to_multiple(x, multiple_of))[..., : x.shape[-2], : x.shape[-1]]


class CANet(nn.Module):
    """Conv + squeeze-excitation channel attention (global pooling, as in RCAB) + conv."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(8, 8, 1)
        self.conv2 = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.relu(self.conv1(x))
        f = f * torch.sigmoid(4.0 * self.fc(self.pool(f)))
        return self.conv2(f)


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (7, 1), (15, 17), (16, 16), (33, 65), (31, 47), (100, 37)])
@pytest.mark.parametrize("multiple_of", [1, 16])
def test_tiled_equals_full_frame_small(size: tuple[int, int], multiple_of: int) -> None:
    net = tiny_net()
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    out = run_tiled(net, x, tile=32, overlap=16, multiple_of=multiple_of, batch_size=3)
    assert out.shape == (2, 3, *size) and out.dtype == torch.float32
    assert (out - full_frame(net, x, multiple_of)).abs().max().item() < 1e-5


def test_tiled_equals_full_frame_3000x2000() -> None:
    net = tiny_net(width=3)
    x = torch.rand(1, 3, 3000, 2000, generator=torch.Generator().manual_seed(0))
    out = run_tiled(net, x, tile=512, overlap=16, multiple_of=16, batch_size=2)
    assert out.shape == x.shape
    assert (out - full_frame(net, x, 16)).abs().max().item() < 1e-5


def test_constant_output_stays_exactly_constant() -> None:
    value = 0.123456789

    def const_net(t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, value)

    x = torch.rand(1, 3, 301, 277)
    out = run_tiled(const_net, x, tile=64, overlap=32, multiple_of=16)
    assert torch.equal(out, torch.full_like(out, value))


def test_constant_image_no_seam_with_real_network() -> None:
    # a network's response to a flat image is flat away from the borders; tiles must not add seams
    net = tiny_net()
    x = torch.full((1, 3, 200, 180), 0.4)
    out = run_tiled(net, x, tile=64, overlap=32, multiple_of=16)
    inner = out[..., 2:-2, 2:-2]
    assert (inner - inner[..., :1, :1]).abs().max().item() < 1e-6


def test_identity_crops_back_exactly() -> None:
    seen: list[tuple[int, int]] = []

    def identity(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return t.clone()

    x = torch.rand(1, 3, 45, 70)
    out = run_tiled(identity, x, tile=32, overlap=16, multiple_of=16)
    assert torch.equal(out, x)
    assert all(h % 16 == 0 and w % 16 == 0 for h, w in seen)


def test_batching_matches_batch_one() -> None:
    net = tiny_net()
    x = torch.rand(2, 3, 90, 130)
    a = run_tiled(net, x, tile=48, overlap=16, batch_size=1)
    b = run_tiled(net, x, tile=48, overlap=16, batch_size=7)
    assert (a - b).abs().max().item() < 1e-6
    c = run_tiled(net, x, tile=48, overlap=16, batch_size=2, channels_last=True)
    assert (a - c).abs().max().item() < 1e-5


def test_tile_zero_is_one_full_frame_pass() -> None:
    calls: list[tuple[int, ...]] = []
    net = tiny_net()

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return net(t)

    x = torch.rand(1, 3, 50, 70)
    out = run_tiled(fn, x, tile=0, overlap=16, multiple_of=16)
    assert calls == [(1, 3, 64, 80)]
    assert (out - full_frame(net, x, 16)).abs().max().item() < 1e-6


def test_rectangular_tiles_and_whole_axis() -> None:
    net = tiny_net()
    x = torch.rand(1, 3, 70, 150)
    calls: list[tuple[int, ...]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape[-2:]))
        return net(t)

    out = run_tiled(fn, x, tile=(0, 64), overlap=16, multiple_of=16)  # whole height, 64-px columns
    assert set(calls) == {(80, 64)} and len(calls) == 3
    assert (out - full_frame(net, x, 16)).abs().max().item() < 1e-5


def test_image_smaller_than_tile_is_one_tile() -> None:
    calls: list[tuple[int, ...]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return t * 2

    x = torch.rand(1, 3, 20, 9)
    out = run_tiled(fn, x, tile=512, overlap=64, multiple_of=16)
    assert calls == [(1, 3, 32, 16)]
    assert torch.allclose(out, 2 * x)


def test_progress_and_out_channels() -> None:
    ticks: list[tuple[int, int]] = []
    x = torch.rand(1, 3, 100, 100)
    out = run_tiled(lambda t: t[:, :1], x, tile=48, overlap=16, batch_size=2,
                    progress=lambda d, n: ticks.append((d, n)))
    assert out.shape == (1, 1, 100, 100)
    assert ticks[-1][0] == ticks[-1][1] == len(tile_grid(112, 48, 16, 16)[0]) ** 2


def test_network_that_changes_size_is_refused() -> None:
    with pytest.raises(ModelError, match="same-size"):
        run_tiled(lambda t: t[..., ::2, ::2], torch.rand(1, 3, 64, 64), tile=32, overlap=8)
    with pytest.raises(DpError, match=r"\(N, C, H, W\)"):
        run_tiled(lambda t: t, torch.rand(3, 8, 8), tile=32, overlap=8)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (17, 33), (33, 47), (40, 9)])
@pytest.mark.parametrize("tile", [16, 32])
def test_tiles_are_windows_of_the_padded_frame(size: tuple[int, int], tile: int) -> None:
    x = torch.rand(1, 2, *size)
    padded = pad_to_multiple(x, 16)
    seen: list[torch.Tensor] = []
    run_tiled(lambda t: seen.append(t.clone()) or t, x, tile=tile, overlap=0, multiple_of=16)
    ys, t_h = tile_grid(padded.shape[-2], tile, 0, 16)
    xs, t_w = tile_grid(padded.shape[-1], tile, 0, 16)
    expected = [padded[..., y:y + t_h, x0:x0 + t_w] for y in ys for x0 in xs]
    assert len(seen) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_tile_grid_aligned_and_covering() -> None:
    starts, t = tile_grid(3008, 512, 64, 16)
    assert t == 512 and starts[0] == 0 and starts[-1] + t == 3008
    assert all(s % 16 == 0 for s in starts)
    assert all(b - a <= t - 64 for a, b in zip(starts, starts[1:]))


def test_blend_ramps_are_complementary() -> None:
    lead = blend_ramp(128, 64, lead=True, trail=False)[:64]
    trail = blend_ramp(128, 64, lead=False, trail=True)[-64:]
    assert torch.allclose(lead + trail, torch.ones(64), atol=1e-6)
    assert lead[:16].abs().max() == 0 and (lead[16:] > 0).all()  # outer quarter: weight 0


def test_precision_bf16_close_and_fp16_on_cpu_refused() -> None:
    net = tiny_net()
    x = torch.rand(1, 3, 64, 64)
    ref = run_tiled(net, x, tile=32, overlap=16)
    bf = run_tiled(net, x, tile=32, overlap=16, precision="bf16", device="cpu")
    assert bf.dtype == torch.float32 and (bf - ref).abs().max().item() < 0.05
    with pytest.raises(DpError, match="fp16"):
        run_tiled(net, x, tile=32, overlap=16, precision="fp16", device="cpu")


def test_local_avg_pool_matches_brute_force_and_global() -> None:
    x = torch.rand(2, 3, 20, 27)
    pool = LocalAvgPool2d(5)
    ref = F.pad(F.avg_pool2d(x, 5, stride=1), (2, 2, 2, 2), mode="replicate")
    assert torch.allclose(pool(x), ref, atol=1e-6)
    assert torch.allclose(LocalAvgPool2d(64)(x), x.mean((-2, -1), keepdim=True))


def test_use_local_pooling_swaps_and_restores() -> None:
    net = CANet().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        with use_local_pooling(net, 64):  # window >= image: identical to global pooling
            assert isinstance(net.pool, LocalAvgPool2d)
            same = net(x)
        assert isinstance(net.pool, nn.AdaptiveAvgPool2d)
    assert torch.allclose(before, same, atol=1e-6)
    with pytest.raises(ModelError, match="AdaptiveAvgPool2d"):
        with use_local_pooling(tiny_net(), 64):
            pass


def test_local_pooling_makes_tiles_agree_with_full_frame() -> None:
    # content whose statistics change across the frame: a tile's global mean differs from the frame's
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 192), torch.linspace(0, 1, 256), indexing="ij")
    x = torch.stack([xx, yy * xx, 1 - yy])[None] + 0.1 * torch.rand(1, 3, 192, 256)
    net = CANet().eval()
    err_global = (run_tiled(net, x, tile=96, overlap=32) - run_tiled(net, x, tile=0, overlap=0)).abs().max()
    with use_local_pooling(net, 32):
        err_local = (run_tiled(net, x, tile=96, overlap=32) - run_tiled(net, x, tile=0, overlap=0)).abs().max()
    assert err_local < 0.2 * err_global


def test_effective_receptive_field_and_spec() -> None:
    assert effective_receptive_field(tiny_net(), 3, size=33, mass=0.999) == 2
    spec = TilingSpec(multiple_of=16, tile=256, overlap=32).with_receptive_field(20)
    assert spec.overlap == 48 and spec.resolve(None, 8) == (256, 8)


def test_run_model_tiled_reads_the_models_spec() -> None:
    net = tiny_net()
    net.tiling = TilingSpec(multiple_of=8, tile=32, overlap=16)
    x = torch.rand(1, 3, 45, 51)
    out = run_model_tiled(net, x)
    assert (out - full_frame(net, x, 8)).abs().max().item() < 1e-5


def test_views_joined_tile_by_tile_equal_the_joined_frame() -> None:
    """A list of views (the DP pair) gives exactly what their concatenation gives, grey
    views expanded lazily included; the channel count is checked against ``out_channels``."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)).eval()
    left, right = torch.rand(1, 1, 70, 90), torch.rand(1, 1, 70, 90)
    views = [left.expand(-1, 3, -1, -1), right.expand(-1, 3, -1, -1)]
    joined = run_tiled(net, torch.cat(views, 1), tile=32, overlap=16)
    split = run_tiled(net, views, tile=32, overlap=16, out_channels=3)
    assert torch.equal(joined, split)
    with pytest.raises(ModelError):
        run_tiled(net, views, tile=32, overlap=16, out_channels=1)
    with pytest.raises(DpError, match="differ in size"):
        run_tiled(net, [views[0], torch.rand(1, 3, 70, 91)], tile=32, overlap=16)
