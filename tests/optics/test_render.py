"""Layered DP renderer: agrees with a plain reference, occludes, stays sharp in focus, differentiates."""
from __future__ import annotations

import torch

from dpcli.optics import blur, dp_kernels
from dpcli.optics.render import (
    blur_layers,
    blur_support,
    over_composite,
    patch_weights,
    render_layers,
    render_mpi,
    space_varying_blur,
)


def _scene(b=1, h=48, w=56, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    colors = torch.rand(b, 3, 3, h, w, generator=g, dtype=dtype)
    alphas = torch.zeros(b, 3, 1, h, w, dtype=dtype)
    alphas[:, 0] = 1
    alphas[:, 1, :, 5:30, 8:30] = 1
    alphas[:, 2, :, 25:44, 30:50] = 1
    alphas[:, 2, :, 24, 30:50] = 0.5  # a soft edge
    return colors, alphas


def _reference(colors, alphas, radius, side):
    """Full-frame blur of every layer, then over (the textbook formula)."""
    out = 0
    for i in range(colors.shape[1]):
        kl, kr = dp_kernels(radius[:, i])
        k = (kl if side == "left" else kr)[:, None]
        c = blur(colors[:, i] * alphas[:, i], k, method="direct")
        a = blur(alphas[:, i], k, method="direct")
        out = c + (1 - a.clamp(0, 1)) * out
    return out


def test_matches_reference_and_map_path():
    colors, alphas = _scene(b=2)
    radius = torch.tensor([[5.0, 0.0, -3.5], [2.2, 1.0, 7.0]])
    res = render_layers(colors, alphas, radius)
    for side in ("left", "right"):
        ref = _reference(colors, alphas, radius, side)
        assert (getattr(res, side) - ref).abs().max() < 1e-5
    torch.testing.assert_close(res.combined, (res.left + res.right) / 2)
    rmap = radius.view(2, 3, 1, 1, 1).expand(2, 3, 1, 48, 56).contiguous()
    res2 = render_layers(colors, alphas, rmap)
    assert (res2.left - res.left).abs().max() < 1e-5
    assert (res2.right - res.right).abs().max() < 1e-5


def test_aif_defocus_and_in_focus_identical():
    colors, alphas = _scene()
    radius = torch.tensor([[6.0, 0.0, 3.0]])
    res = render_layers(colors, alphas, radius)
    torch.testing.assert_close(res.aif, over_composite(colors * alphas, alphas))
    assert res.defocus[0, 0, 10, 15] == 0 and res.defocus[0, 0, 35, 40] == 3
    assert res.defocus[0, 0, 2, 52] == 6
    # interior of the in-focus layer, farther than the front layer's blur reach: L == R
    inner = (slice(None), slice(None), slice(8, 20), slice(10, 25))
    assert (res.left[inner] - res.right[inner]).abs().max() < 1e-6
    assert (res.left[inner] - res.aif[inner]).abs().max() < 1e-6
    # an occluded background does not leak through an opaque in-focus layer
    assert (res.left[inner] - colors[:, 1][inner]).abs().max() < 1e-6


def test_mpi_helpers_agree():
    colors, alphas = _scene(b=1)
    kl, _ = dp_kernels(torch.tensor([4.0, 0.0, 2.0]))
    img = render_mpi(colors, alphas, kl)
    ref = _reference(colors, alphas, torch.tensor([[4.0, 0.0, 2.0]]), "left")
    assert (img - ref).abs().max() < 1e-5
    # per-patch kernels that are all the same equal per-layer kernels
    pw = patch_weights((2, 3), 48, 56)
    torch.testing.assert_close(pw.sum(0), torch.ones(48, 56))
    img2 = render_mpi(colors, alphas, kl[:, None].expand(3, 6, *kl.shape[-2:]), patches=pw)
    assert (img2 - img).abs().max() < 1e-5
    bc, ba = blur_layers(colors, alphas, kl)
    assert bc.shape == (1, 3, 3, 48, 56) and ba.shape == (1, 3, 1, 48, 56)


def test_space_varying_blur_is_linear_combination():
    x = torch.rand(1, 2, 30, 40)
    k = torch.stack([dp_kernels(torch.tensor([r]), size=9)[0][0] for r in (1.0, 4.0)])[None]
    wmap = torch.linspace(0, 1, 40).expand(30, 40)
    w = torch.stack([1 - wmap, wmap])[None]
    y = space_varying_blur(x, k, w)
    ref = blur(x * w[:, :1], k[:, :1]) + blur(x * w[:, 1:], k[:, 1:])
    torch.testing.assert_close(y, ref)


def test_blur_support_exact():
    x = torch.zeros(2, 4, 40, 50)
    x[:, :, 30:40, 0:6] = torch.rand(2, 4, 10, 6)
    k = torch.rand(2, 1, 11, 10)
    for padding in ("reflect", "replicate", "zeros", "circular"):
        ref = blur(x, k, method="direct", padding=padding)
        assert (blur_support(x, k, padding=padding) - ref).abs().max() < 1e-5


def test_gradient_to_radius_map_finite_difference():
    colors, alphas = _scene(h=32, w=36, dtype=torch.float64)
    base = torch.tensor([4.3, 1.7, 2.6], dtype=torch.float64).view(1, 3, 1, 1, 1)
    ramp = torch.linspace(0, 1.5, 36, dtype=torch.float64).view(1, 1, 1, 1, 36)
    rmap = (base + ramp).expand(1, 3, 1, 32, 36).clone().requires_grad_(True)
    target = torch.rand(1, 3, 32, 36, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(r):
        res = render_layers(colors, alphas, r)
        return ((res.left - target) ** 2).sum() + ((res.right - target) ** 2).sum()

    loss(rmap).backward()
    direction = torch.randn(rmap.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    eps = 1e-4
    with torch.no_grad():
        fd = (loss(rmap + eps * direction) - loss(rmap - eps * direction)) / (2 * eps)
    analytic = (rmap.grad * direction).sum()
    assert abs(float(fd - analytic)) < 1e-4 * max(1.0, abs(float(fd)))
    assert rmap.grad.abs().sum() > 0


def test_gradcheck_scalar_radius():
    colors, alphas = _scene(h=32, w=36, dtype=torch.float64)
    r = torch.tensor([[3.3, 0.6, 2.4]], dtype=torch.float64, requires_grad=True)
    weight = torch.rand(colors.shape[-2:], dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def f(x):
        res = render_layers(colors, alphas, x)
        return torch.stack([(res.left * weight).sum(), (res.right * weight).sum()])

    assert torch.autograd.gradcheck(f, (r,))


def test_edge_asymmetry_changes_corners_only_slightly():
    colors, alphas = _scene()
    radius = torch.tensor([[6.0, 0.0, 3.0]])
    plain = render_layers(colors, alphas, radius)
    asym = render_layers(colors, alphas, radius, edge_asymmetry=0.3, patch_grid=(3, 3))
    diff = (asym.left - plain.left).abs()
    assert diff.max() > 1e-3  # it does something
    assert (asym.left[..., 8:20, 10:25] - plain.left[..., 8:20, 10:25]).abs().max() < 1e-6
