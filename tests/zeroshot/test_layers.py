"""Stage 1 (dpcli.zeroshot.init solvers, dpcli.zeroshot.layers.solve_layers)."""
from __future__ import annotations

import time

import torch

from dpcli.metrics import psnr
from dpcli.optics import blur, dp_kernels
from dpcli.zeroshot import make_config, prepare_kernels, solve_layers
from dpcli.zeroshot.init import (closed_form_cost, closed_form_layers, closed_form_layers_patched, iterative_layers,
                                 taper_pad)
from dpcli.zeroshot.kernels import layer_kernels, parametric_max_kernels
from tests.zeroshot.zs_helpers import texture


class TestStage1:
    def test_taper_pad_is_periodic_smooth(self):
        img = texture(40, 52)
        p = taper_pad(img, 8)
        assert torch.allclose(p.crop(p.data), img)
        # the wrap-around seam is continuous: opposite borders agree
        assert float((p.data[..., 0, :] - p.data[..., -1, :]).abs().max()) < 1e-3

    def test_closed_form_deblurs_uniform_blur(self):
        sharp = texture()
        radii = torch.tensor([0.0, 2.0, 4.0])
        kernels = layer_kernels(parametric_max_kernels(4.0), radii)
        yl = blur(sharp[None], kernels[2, 0][None, None])[0]
        yr = blur(sharp[None], kernels[2, 1][None, None])[0]
        init = closed_form_layers(yl, yr, kernels, lam=1e-3)
        c = slice(12, -12)
        gain = psnr(init.latent[2][:, c, c], sharp[:, c, c]) - psnr(((yl + yr) / 2)[:, c, c], sharp[:, c, c])
        assert gain > 5.0
        # the right layer explains both views best
        res = ((init.blur_left - yl).square() + (init.blur_right - yr).square()).mean((1, 2, 3))
        assert int(res.argmin()) == 2

    def test_patched_closed_form_matches_uniform_and_follows_field_varying_kernels(self):
        sharp = texture(96, 128, seed=3)
        radii = torch.tensor([0.0, 2.0, 4.0])
        kernels = layer_kernels(parametric_max_kernels(4.0), radii)  # (L, 2, K, K)
        yl = blur(sharp[None], kernels[2, 0][None, None])[0]
        yr = blur(sharp[None], kernels[2, 1][None, None])[0]
        same = closed_form_layers_patched(yl, yr, kernels.expand(2 * 2, -1, -1, -1, -1), (2, 2), 0.03)
        whole = closed_form_layers(yl, yr, kernels, 0.03)
        # tents sum to 1 and every patch saw a kernel width of context: equal up to tile borders
        assert float((same.latent[2] - whole.latent[2]).abs().mean()) < 4e-3
        # left half blurred with radius 4, right half sharp (radius 0): per-patch kernels find both
        y_mix_l, y_mix_r = yl.clone(), yr.clone()
        y_mix_l[..., 64:], y_mix_r[..., 64:] = sharp[..., 64:], sharp[..., 64:]
        per_patch = torch.stack([kernels[[2, 2, 2]], kernels[[0, 0, 0]]])  # cols: r=4 | r=0, all layers
        mixed = closed_form_layers_patched(y_mix_l, y_mix_r, per_patch.repeat(1, 1, 1, 1, 1), (1, 2), 1e-3)
        uniform = closed_form_layers(y_mix_l, y_mix_r, kernels[[2, 2, 2]], 1e-3)
        c = (slice(8, -8), slice(8, 40))  # the blurred half, away from the image border
        gain = psnr(mixed.latent[0][:, c[0], c[1]], sharp[:, c[0], c[1]]) - \
            psnr(((y_mix_l + y_mix_r) / 2)[:, c[0], c[1]], sharp[:, c[0], c[1]])
        assert gain > 3.0
        far = (slice(8, -8), slice(104, 120))  # the sharp half: left alone by its own (r=0) kernels
        assert psnr(mixed.latent[0][:, far[0], far[1]], sharp[:, far[0], far[1]]) > \
            psnr(uniform.latent[0][:, far[0], far[1]], sharp[:, far[0], far[1]]) + 3.0

    def test_patched_closed_form_kernel_roi(self):
        sharp = texture(64, 128, seed=4)
        kernels = layer_kernels(parametric_max_kernels(4.0), torch.tensor([0.0, 2.0, 4.0]))
        yl = blur(sharp[None], kernels[2, 0][None, None])[0]
        yr = blur(sharp[None], kernels[2, 1][None, None])[0]
        per_patch = torch.stack([kernels.flip(0), kernels])  # patch 1 holds the true layer order
        # the grid covers the left half only: everything right of patch 1's centre uses patch 1
        res = closed_form_layers_patched(yl, yr, per_patch, (1, 2), 0.03, roi=(0, 64, 0, 64))
        alone = closed_form_layers(yl, yr, kernels, 0.03)
        assert float((res.latent[2][..., 80:120] - alone.latent[2][..., 80:120]).abs().mean()) < 4e-3
        assert float((res.latent[0][..., 80:120] - alone.latent[2][..., 80:120]).abs().mean()) > 2e-2

    def test_iterative_variant_reduces_eq4(self):
        sharp = texture(48, 48)
        kernels = layer_kernels(parametric_max_kernels(3.0), torch.tensor([0.0, 3.0]))
        yl = blur(sharp[None], kernels[1, 0][None, None])[0]
        yr = blur(sharp[None], kernels[1, 1][None, None])[0]
        few = iterative_layers(yl, yr, kernels, iters=2)
        more = iterative_layers(yl, yr, kernels, iters=60)
        err = lambda r: float(((r.blur_left[1] - yl).square() + (r.blur_right[1] - yr).square()).mean())  # noqa
        assert err(more) < 0.5 * err(few)

    def test_iterative_variant_checks_its_deadline(self):
        sharp = texture(48, 48)
        kernels = layer_kernels(parametric_max_kernels(3.0), torch.tensor([0.0, 3.0]))
        yl, yr = blur(sharp[None], kernels[1, 0][None, None])[0], blur(sharp[None], kernels[1, 1][None, None])[0]
        assert iterative_layers(yl, yr, kernels, iters=50).iters == 50
        assert iterative_layers(yl, yr, kernels, iters=50, deadline=time.perf_counter()).iters == 1


class TestSolveLayers:
    def test_parametric_measured_and_iterative(self):
        sharp = texture(64, 64, seed=2)
        kl, kr = dp_kernels(torch.tensor([3.0]))
        yl, yr = blur(sharp[None], kl[None])[0], blur(sharp[None], kr[None])[0]
        cfg = make_config("fast", layers=4, max_radius=3.0, grid=(1, 1), lam=1e-3)
        setup = prepare_kernels(cfg, 64, 64)
        stack = solve_layers(yl, yr, setup, cfg)
        assert stack.latent.shape == (4, 1, 64, 64) and stack.radii.tolist() == [0, 1, 2, 3]
        # the solver called for: the uniform closed form with the parametric kernels
        same = closed_form_layers(yl, yr, layer_kernels(setup.uniform, setup.radii), cfg.lam)
        assert torch.equal(stack.latent, same.latent)
        cal = prepare_kernels(cfg, 64, 64, (kl.numpy(), kr.numpy()))
        patched = solve_layers(yl, yr, cal, cfg)
        assert patched.latent.shape == (4, 1, 64, 64) and patched.iters == 0
        it = solve_layers(yl, yr, setup, cfg.with_(init="iterative", init_iters=3))
        assert it.iters == 3 and it.radii is setup.radii
        half = solve_layers(yl, yr, setup, cfg.with_(precision="bf16"))
        assert half.latent.dtype == torch.bfloat16


def test_closed_form_cost_models_the_patched_solve():
    # the patched solve on a small image costs far more than the uniform one: the readout's budget
    whole = closed_form_cost(256, 384, 35, 18)
    patched = closed_form_cost(256, 384, 35, 18, (6, 8))
    assert 8 < patched / whole < 40
    assert closed_form_cost(256, 384, 35, 18, (1, 1)) == whole
