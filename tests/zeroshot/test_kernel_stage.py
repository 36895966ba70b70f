"""Stage 3 (dpcli.zeroshot.kernel_stage): G_F per patch."""
from __future__ import annotations

import time

import torch

from dpcli.optics import blur
from dpcli.zeroshot import fit_kernels, make_config
from dpcli.zeroshot.kernel_stage import active_layers, merge_weights
from dpcli.zeroshot.kernels import layer_kernels, layer_radii, parametric_max_kernels
from tests.zeroshot.zs_helpers import texture


def test_stage3_keeps_the_layers_pixels_pick_and_moves_dropped_weight_to_neighbours():
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


def _scene():
    sharp = texture(64, 64, seed=1)
    radii = layer_radii(3, 3.0, "front")
    kmax = parametric_max_kernels(3.0)
    kernels = layer_kernels(kmax, radii)
    yl = blur(sharp[None], kernels[2, 0][None, None])[0]
    yr = blur(sharp[None], kernels[2, 1][None, None])[0]
    weights = torch.zeros(3, 64, 64)
    weights[2] = 1
    return yl, yr, weights, radii, {k: v[None] for k, v in kmax.items()}


def test_fit_kernels_result_and_iterations():
    yl, yr, weights, radii, start = _scene()
    cfg = make_config("fast", layers=3, max_radius=3.0, grid=(2, 2), gf_prefit_iters=5, gf_vp_iters=3,
                      gf_joint_iters=2, plateau_patience=1000)
    ks = fit_kernels(yl, yr, weights, radii, start, cfg)
    assert ks.aif.shape == (1, 64, 64) and ks.kernels["f"].shape == (4, 2, 7, 7)
    assert ks.log.iters == 5 and ks.log.stopped == "iterations"
    assert torch.allclose(ks.kernels["f"].sum((-2, -1)), torch.ones(4, 2), atol=1e-4)


def test_fit_kernels_checks_its_deadlines():
    yl, yr, weights, radii, start = _scene()
    cfg = make_config("fast", layers=3, max_radius=3.0, grid=(2, 2), gf_prefit_iters=500, gf_vp_iters=500,
                      gf_joint_iters=500, plateau_patience=1000)
    now = time.perf_counter()
    ks = fit_kernels(yl, yr, weights, radii, start, cfg, deadline_vp=now, deadline=now)
    # prefit stops before its first step, each loop after its first: 1 VP step + 1 joint step
    assert ks.log.iters == 2 and ks.log.stopped == "time budget"
