"""Zero-shot MPI deblurring (dpcli.zeroshot): pieces, a synthetic scene, a real Pixel 4 crop."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from dpcli.metrics import psnr, spearman
from dpcli.optics import blur, dp_kernels
from dpcli.zeroshot import horizontal_disparity, make_config, zeroshot_deblur
from dpcli.zeroshot.init import closed_form_layers, closed_form_layers_patched, iterative_layers, taper_pad
from dpcli.zeroshot.kernels import (downsize, layer_kernels, layer_radii, measured_layer_kernels, measured_radius,
                                    parametric_max_kernels)
from dpcli.zeroshot.networks import DefocusNet, KernelGenerator, alpha_to_weights
from dpcli.zeroshot.optimize import prefit_generators, KernelModel


def _texture(h: int = 96, w: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (0.2 + 0.6 * x.clamp(0, 1))[0]


class TestKernels:
    def test_radii_front_back_both(self):
        assert layer_radii(4, 3.0, "front").tolist() == [0, 1, 2, 3]
        assert layer_radii(4, 3.0, "back").tolist() == [-3, -2, -1, 0]
        assert layer_radii(4, 3.0, "both").tolist() == [-3, -2, -1, 0, 1, 2, 3]

    def test_downsized_layers(self):
        kmax = parametric_max_kernels(5.0)
        ks = layer_kernels(kmax, layer_radii(6, 5.0, "both"))  # (11, 2, 11, 11)
        assert ks.shape == (11, 2, 11, 11)
        assert torch.allclose(ks.sum((-2, -1)), torch.ones(11, 2), atol=1e-5)
        zero = ks[5, 0]
        assert float(zero[5, 5]) == pytest.approx(1.0)  # radius 0: a delta
        # layer 2 only occupies the central 5 x 5 (zero-padded)
        assert float(ks[7, 0].sum()) == pytest.approx(float(ks[7, 0, 3:8, 3:8].sum()), abs=1e-6)
        # back layers are the mirror image: left kernel mass toward -x
        xs = torch.arange(11) - 5.0
        assert float((ks[0, 0].sum(0) * xs).sum()) < 0 < float((ks[10, 0].sum(0) * xs).sum())

    def test_measured_kernels_are_stretched_to_every_layer(self):
        kl, kr = dp_kernels(torch.tensor([6.0, 6.0]), size=21)  # two "calibration" patches
        r_cal = float(measured_radius(kl, kr)[0])
        radii = torch.tensor([-r_cal, 0.0, r_cal / 2, r_cal])
        layers = measured_layer_kernels(kl, kr, radii, size=25)
        assert layers.shape == (2, 4, 2, 25, 25)
        assert torch.allclose(layers.sum((-2, -1)), torch.ones(2, 4, 2), atol=1e-5)
        pad = lambda k: torch.nn.functional.pad(k, (2, 2, 2, 2))  # noqa: E731
        assert float((layers[0, 3, 0] - pad(kl[0])).abs().max()) < 0.02 * float(kl[0].max())  # factor 1: itself
        assert float(layers[0, 1, 0, 12, 12]) > 0.99  # radius 0: a delta
        assert torch.allclose(layers[0, 0], layers[0, 3].flip(-1), atol=1e-5)  # back focus: mirrored
        half = measured_radius(layers[0, 2, 0:1], layers[0, 2, 1:2])
        assert abs(float(half) - r_cal / 2) < 0.1 * r_cal  # the L/R gap scales with the radius

    def test_downsize_is_differentiable(self):
        k = parametric_max_kernels(4.0)["f"].clone().requires_grad_(True)
        downsize(k, 2.0).square().sum().backward()
        assert k.grad is not None and float(k.grad.abs().sum()) > 0


class TestNetworks:
    def test_over_operator_weights_sum_to_one(self):
        alpha = torch.rand(2, 5, 4, 4)
        alpha[:, 0] = 1
        d = alpha_to_weights(alpha)
        assert torch.allclose(d.sum(1), torch.ones(2, 4, 4), atol=1e-6)
        # the top layer is never occluded: D_top = alpha_top
        assert torch.allclose(d[:, -1], alpha[:, -1])

    def test_defocus_net_shapes_and_uniform_start(self):
        net = DefocusNet(2, 6)
        alpha = net(torch.rand(1, 2, 64, 48))
        assert alpha.shape == (1, 6, 8, 6)
        d = alpha_to_weights(alpha)
        assert torch.allclose(d, torch.full_like(d, 1 / 6), atol=0.02)

    def test_kernel_generator_softmax_and_prefit(self):
        gen = KernelGenerator(4, 7)
        k = gen()
        assert k.shape == (4, 7, 7) and torch.all(k >= 0)
        assert torch.allclose(k.sum((-2, -1)), torch.ones(4), atol=1e-5)
        target = parametric_max_kernels(3.0)
        model = KernelModel(["f"], 4, 7, None, 0)
        before = (model()["f"] - target["f"][None]).abs().sum((-2, -1)).mean().item()
        after = prefit_generators(model, {"f": target["f"][None].expand(4, -1, -1, -1)}, 80, 2e-3)
        assert after < 0.25 * before


class TestStage1:
    def test_taper_pad_is_periodic_smooth(self):
        img = _texture(40, 52)
        p = taper_pad(img, 8)
        assert torch.allclose(p.crop(p.data), img)
        # the wrap-around seam is continuous: opposite borders agree
        assert float((p.data[..., 0, :] - p.data[..., -1, :]).abs().max()) < 1e-3

    def test_closed_form_deblurs_uniform_blur(self):
        sharp = _texture()
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
        sharp = _texture(96, 128, seed=3)
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

    def test_patched_closed_form_kernel_roi_and_stage3_patch_map(self):
        from dpcli.zeroshot import nearest_patch

        sharp = _texture(64, 128, seed=4)
        kernels = layer_kernels(parametric_max_kernels(4.0), torch.tensor([0.0, 2.0, 4.0]))
        yl = blur(sharp[None], kernels[2, 0][None, None])[0]
        yr = blur(sharp[None], kernels[2, 1][None, None])[0]
        per_patch = torch.stack([kernels.flip(0), kernels])  # patch 1 holds the true layer order
        # the grid covers the left half only: everything right of patch 1's centre uses patch 1
        res = closed_form_layers_patched(yl, yr, per_patch, (1, 2), 0.03, roi=(0, 64, 0, 64))
        alone = closed_form_layers(yl, yr, kernels, 0.03)
        assert float((res.latent[2][..., 80:120] - alone.latent[2][..., 80:120]).abs().mean()) < 4e-3
        assert float((res.latent[0][..., 80:120] - alone.latent[2][..., 80:120]).abs().mean()) > 2e-2
        # stage 3 spreads the same grid over the whole view: tiles take the nearest calibrated patch
        assert nearest_patch(64, 128, (1, 2), (0, 64, 0, 128)).tolist() == [0, 1]
        assert nearest_patch(64, 128, (1, 2), (0, 64, 0, 64)).tolist() == [1, 1]
        pixel4 = nearest_patch(1512, 2016, (6, 8), (252, 1260, 336, 1680))
        assert pixel4[0] == 0 and pixel4[-1] == 47 and len(set(pixel4.tolist())) < 48

    def test_iterative_variant_reduces_eq4(self):
        sharp = _texture(48, 48)
        kernels = layer_kernels(parametric_max_kernels(3.0), torch.tensor([0.0, 3.0]))
        yl = blur(sharp[None], kernels[1, 0][None, None])[0]
        yr = blur(sharp[None], kernels[1, 1][None, None])[0]
        few = iterative_layers(yl, yr, kernels, iters=2)
        more = iterative_layers(yl, yr, kernels, iters=60)
        err = lambda r: float(((r.blur_left[1] - yl).square() + (r.blur_right[1] - yr).square()).mean())  # noqa
        assert err(more) < 0.5 * err(few)


def test_disparity_sign_and_swap_warning():
    sharp = _texture(96, 96, seed=3)
    kl, kr = dp_kernels(torch.tensor([5.0]))
    yl = blur(sharp[None], kl[None])[0]
    yr = blur(sharp[None], kr[None])[0]
    assert horizontal_disparity(yl, yr) > 1.0
    cfg = make_config("fast", layers=3, max_radius=4.0, grid=(1, 1), gd_iters=1, gd_warm_iters=0,
                      gf_prefit_iters=1, gf_vp_iters=0, gf_joint_iters=0)
    with pytest.warns(UserWarning, match="swap"):
        zeroshot_deblur(yr, yl, cfg)


def test_synthetic_scene_improves_and_maps_defocus():
    from dpcli.synth import make_test_scene

    torch.manual_seed(0)
    sc = make_test_scene(96, seed=3, max_radius=5.0, focus_mode="front", output="linear")
    # the scene is rendered with RDPD kernels (beta 0.1): the optimiser gets that camera model
    cfg = make_config("fast", layers=6, max_radius=5.0, grid=(2, 2), gd_iters=200, gd_warm_iters=150,
                      gd_crop=32, gf_prefit_iters=60, gf_vp_iters=5, gf_joint_iters=3, kernel_beta=0.1)
    res = zeroshot_deblur(sc.left, sc.right, cfg)
    assert res.aif.shape == tuple(sc.left.shape)
    base = psnr(sc.combined.numpy(), sc.sharp.numpy())
    out = psnr(np.clip(res.aif, 0, 1), sc.sharp.numpy())
    assert psnr(res.stage_images["init"], sc.sharp.numpy()) > base + 1.5
    assert out > base + 1.0, (base, out)
    rho = spearman(res.defocus, sc.defocus[0].numpy())
    assert rho > 0.4, rho
    assert set(res.stage_images) == {"init", "defocus", "kernels"}
    assert res.kernels_left.shape == (1, 4, 11, 11)
    assert np.allclose(res.kernels_left.sum((-2, -1)), 1, atol=1e-4)


def test_bad_inputs():
    from dpcli.errors import InputError

    with pytest.raises(InputError, match="differ"):
        zeroshot_deblur(np.zeros((1, 64, 64)), np.zeros((1, 64, 60)))
    with pytest.raises(InputError, match="small"):
        zeroshot_deblur(np.zeros((1, 16, 16)), np.zeros((1, 16, 16)))


@pytest.mark.slow
def test_pixel4_crop_improves(pixel4_dir):
    from dpcli.metrics.protocols import PIXEL4_CROP, load_pixel4_scene

    sc = load_pixel4_scene(pixel4_dir, "009")  # swap_lr=True: our orientation
    r0, _, c0, _ = PIXEL4_CROP
    y, x, s = 336, 504, 168
    left = sc.left[:, r0 + y : r0 + y + s, c0 + x : c0 + x + s]
    right = sc.right[:, r0 + y : r0 + y + s, c0 + x : c0 + x + s]
    gt = sc.gt[:, y : y + s, x : x + s]
    cfg = make_config("fast", grid=(1, 1), gd_iters=80, gd_warm_iters=40, gd_crop=64,
                      gf_prefit_iters=60, gf_vp_iters=10, gf_joint_iters=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # correctly oriented views: no swap warning
        res = zeroshot_deblur(left, right, cfg)
    base = psnr((left + right) / 2, gt)
    assert psnr(res.aif, gt) > base + 0.3
    assert res.defocus.mean() > 1.0  # behind the focal plane: positive radii


def test_cli_writes_all_outputs(tmp_path):
    from typer.testing import CliRunner

    from dpcli.cli import app
    from dpcli.io.images import read_image, write_image
    from dpcli.synth import make_test_scene

    sc = make_test_scene(64, seed=1, max_radius=3.0, focus_mode="front", output="linear")
    write_image(tmp_path / "s_L.png", sc.left.numpy(), 16)
    write_image(tmp_path / "s_R.png", sc.right.numpy(), 16)
    out = tmp_path / "out"
    args = ["zeroshot", str(tmp_path / "s_L.png"), str(tmp_path / "s_R.png"), "-o", str(out), "--layers", "4",
            "--max-radius", "3", "--grid", "1x1", "--time-budget", "4", "--debug", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"s.png", "s_defocus.tiff", "s_defocus.png", "s_kernels.npy", "s_kernels.png", "s_debug"} <= names
    aif = read_image(out / "s.png")
    assert aif.bit_depth == 16 and aif.data.shape == (3, 64, 64)
    kern = np.load(out / "s_kernels.npy")
    assert kern.shape == (2, 1, 1, 7, 7)
    assert (out / "s_debug" / "loss_curve.png").is_file()
    assert len(list((out / "s_debug").glob("layer_*.png"))) == 4
    # a second run without --overwrite skips the finished scene and leaves its outputs alone
    stamp = (out / "s.png").stat().st_mtime_ns
    again = CliRunner().invoke(app, args + ["--json"])
    assert again.exit_code == 0 and '"skipped": 1' in again.output
    assert (out / "s.png").stat().st_mtime_ns == stamp


def test_time_budget_falls_back_to_finished_stage():
    sharp = _texture(64, 64, seed=5)
    kl, kr = dp_kernels(torch.tensor([3.0]))
    yl, yr = blur(sharp[None], kl[None])[0], blur(sharp[None], kr[None])[0]
    cfg = make_config("fast", layers=4, max_radius=3.0, grid=(1, 1), time_budget=1e-3, gf_prefit_iters=2)
    res = zeroshot_deblur(yl, yr, cfg)
    assert res.info["defocus_source"].startswith("stage-1 residual")
    assert res.info["output_stage"].startswith("defocus")
    assert np.array_equal(res.aif, res.stage_images["init"])
    assert psnr(res.aif, sharp) > psnr((yl + yr) / 2, sharp) + 1.0
    chosen = zeroshot_deblur(yl, yr, cfg.with_(time_budget=None, output_stage="init", gd_iters=1, gd_warm_iters=0,
                                               gf_vp_iters=1, gf_joint_iters=0))
    assert chosen.info["output_stage"] == "init (requested)"
    assert np.array_equal(chosen.aif, chosen.stage_images["init"])


def test_collapsed_defocus_net_is_not_used(monkeypatch):
    """A G_D that puts every pixel on one wrong layer explains the views far worse than the stage-1
    choice: the guard keeps the stage-1 weights and says so in ``info``."""
    import dpcli.zeroshot.defocus as zs
    from dpcli.synth import make_test_scene
    from dpcli.zeroshot.loop import StageLog

    def collapsed(left, right, blur_left, blur_right, radii, cfg, deadline=None, warm=None):
        w = torch.zeros(radii.numel(), *left.shape[-2:])
        w[-1] = 1.0  # the largest blur everywhere
        return None, w, StageLog(iters=cfg.gd_iters)

    monkeypatch.setattr(zs, "train_defocus_net", collapsed)
    sc = make_test_scene(64, seed=1, max_radius=4.0, focus_mode="front", output="linear")
    cfg = make_config("fast", layers=5, max_radius=4.0, grid=(1, 1), gf_prefit_iters=5, gf_vp_iters=2,
                      gf_joint_iters=1, kernel_beta=0.1, output_stage="defocus")
    res = zeroshot_deblur(sc.left, sc.right, cfg)
    assert res.info["gd_reblur_ratio"] > 3
    assert res.info["defocus_source"].startswith("stage-1 residual")
    assert np.array_equal(res.aif, res.stage_images["init"])


def test_stage3_keeps_the_layers_pixels_pick_and_moves_dropped_weight_to_neighbours():
    from dpcli.zeroshot.optimize import active_layers, merge_weights

    w = torch.full((6, 4, 4), 0.1)  # soft, spread weights ...
    w[1, :2] = 0.5  # ... but half the pixels pick layer 1,
    w[4, 2:] = 0.5  # the other half layer 4
    w[5] = 0.4  # the most total weight, yet no pixel's first choice
    assert w[5].sum() > w[1].sum() and w[5].sum() > w[4].sum()
    w = w / w.sum(0, keepdim=True)
    kept = active_layers(w, 2, 1e-3)
    assert kept == [1, 4]
    merged = merge_weights(w, torch.tensor(kept))
    assert merged.shape == (2, 4, 4) and torch.allclose(merged.sum(0), torch.ones(4, 4))
    # dropped layers 0, 2 join layer 1 and 3, 5 join layer 4: each half keeps its pick
    assert (merged[0, :2] > 0.5).all() and (merged[1, 2:] > 0.5).all()


def test_stage3_resolve_readout_picks_the_true_layer_and_deblurs():
    from dpcli.zeroshot import read_out

    sharp = _texture(96, 96, seed=5)
    radii = torch.tensor([0.0, 2.0, 4.0])
    kmax = parametric_max_kernels(4.0)
    kernels = layer_kernels(kmax, radii)
    yl = blur(sharp[None], kernels[2, 0][None, None])[0]
    yr = blur(sharp[None], kernels[2, 1][None, None])[0]
    cfg = make_config("fast", grid=(1, 1), lam=1e-3)
    flat = torch.full((3, 96, 96), 1 / 3)
    out = read_out(yl, yr, {k: v[None] for k, v in kmax.items()}, radii, flat, cfg, rechoose=True)
    weights, image = out.weights, out.image
    c = slice(12, -12)
    assert float(weights[2, c, c].mean()) > 0.8  # the layer that made the views
    assert psnr(image[:, c, c], sharp[:, c, c]) > psnr(((yl + yr) / 2)[:, c, c], sharp[:, c, c]) + 5.0
    kept = read_out(yl, yr, {k: v[None] for k, v in kmax.items()}, radii, flat, cfg).weights
    assert kept is flat  # G_D's weights are used as they are
