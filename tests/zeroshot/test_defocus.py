"""Stage 2 (dpcli.zeroshot.defocus): G_D, its guard, its deadline."""
from __future__ import annotations

import time

import numpy as np
import torch

from dpcli.zeroshot import fit_defocus_map, fuse_layers, make_config, prepare_kernels, solve_layers, zeroshot_deblur
from dpcli.zeroshot.defocus import train_defocus_net
from tests.zeroshot.zs_helpers import texture


def _stage1(cfg, seed=0):
    from dpcli.optics import blur, dp_kernels

    sharp = texture(64, 64, seed=seed)
    kl, kr = dp_kernels(torch.tensor([3.0]))
    yl, yr = blur(sharp[None], kl[None])[0], blur(sharp[None], kr[None])[0]
    stack = solve_layers(yl, yr, prepare_kernels(cfg, 64, 64), cfg)
    return yl, yr, stack, fuse_layers(yl, yr, stack, cfg)


def test_g_d_loop_checks_its_deadline():
    cfg = make_config("fast", layers=4, max_radius=3.0, grid=(1, 1), gd_crop=32, gd_iters=40, gd_warm_iters=5)
    yl, yr, stack, fusion = _stage1(cfg)
    _, _, log = train_defocus_net(yl, yr, stack.blur_left, stack.blur_right, stack.radii, cfg,
                                  time.perf_counter(), fusion.weights)
    assert log.iters == 1 and log.stopped == "time budget"
    # a deadline that has passed before the stage starts: G_D is not even built
    out = fit_defocus_map(yl, yr, stack, fusion, cfg, deadline=time.perf_counter() - 1)
    assert out.log.iters == 0 and out.source.startswith("stage-1 residual (time budget")
    assert out.weights is fusion.weights


def test_fit_defocus_map_result():
    cfg = make_config("fast", layers=4, max_radius=3.0, grid=(1, 1), gd_crop=32, gd_iters=6, gd_warm_iters=3,
                      gd_max_reblur_ratio=1e9)
    yl, yr, stack, fusion = _stage1(cfg)
    out = fit_defocus_map(yl, yr, stack, fusion, cfg)
    assert out.source == "G_D" and out.log.iters == 6 and out.seconds > 0
    assert out.weights.shape == (4, 64, 64) and torch.allclose(out.weights.sum(0), torch.ones(64, 64), atol=1e-4)
    assert torch.equal(out.image, out.gd_image) and out.reblur_ratio > 0


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
    assert res.info["defocus_source"].startswith(f"stage-1 {res.info['fusion']}")  # auto: learned on colour
    assert np.array_equal(res.aif, res.stage_images["init"])
    assert "kernels" not in res.timings  # output stage defocus: G_F did not run
