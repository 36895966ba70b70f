"""Stage-3 readout (dpcli.zeroshot.readout)."""
from __future__ import annotations

import torch

from dpcli.metrics import psnr
from dpcli.optics import blur
from dpcli.zeroshot import make_config
from dpcli.zeroshot.kernels import layer_kernels, parametric_max_kernels
from dpcli.zeroshot.readout import readout_seconds
from tests.zeroshot.zs_helpers import texture


def test_stage3_resolve_readout_picks_the_true_layer_and_deblurs():
    from dpcli.zeroshot import read_out

    sharp = texture(96, 96, seed=5)
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


def test_readout_time_is_predicted_from_stage_1():
    cfg = make_config("fast")
    small = readout_seconds(cfg, 256, 384, 1.0)
    big = readout_seconds(cfg, 1120, 1472, 1.0)
    assert small > 8 and 3 < big < small  # per-patch margins dominate on small images
    assert readout_seconds(cfg.with_(init="iterative"), 256, 384, 1.0) is None
