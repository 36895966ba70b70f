"""Stage 2 of the zero-shot MPI method: the defocus map G_D (thesis 004, section 3.2, Eq. 5-11, 13-14).

The reblurred layers ``X_i * f_i`` are fixed after stage 1, so each step only blends them with the
predicted defocus map (Eq. 9/11) and can run on random crops (the network is fully convolutional:
a crop sees exactly what the full frame sees there). Public stage function: :func:`fit_defocus_map`
(G_D trained on the scene, then a guard against a map that explains the views worse than the
stage-1 fusion).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dpcli.zeroshot.config import ZeroShotConfig
from dpcli.zeroshot.fusion import Fusion, blend_layers
from dpcli.zeroshot.init import LayerStack
from dpcli.zeroshot.loop import Plateau, StageLog, past
from dpcli.zeroshot.networks import DefocusNet, alpha_to_weights

__all__ = ["DefocusStage", "fit_defocus_map", "train_defocus_net", "defocus_weights", "net_input", "tv",
           "reblur_error"]


def net_input(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(C, H, W) x2 -> (1, 2C, H, W) views scaled to a mean of 0.5 (exposure-independent input)."""
    scale = 0.5 / ((left + right) / 2).mean().clamp_min(1e-6)
    return torch.cat([left, right], 0)[None] * scale


def _pad8(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8
    return (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x), h, w


def defocus_weights(net: DefocusNet, inp: torch.Tensor, down: int = 1) -> torch.Tensor:
    """G_D -> alpha (Eq. 8) -> defocus weights (Eq. 6) -> bilinear upsampling: (B, L, H, W).

    ``down`` > 1 feeds G_D an area-downsampled pair (coarse-to-fine speed lever; the map it
    predicts is 8 * down times coarser than the image either way, then upsampled).
    """
    h, w = inp.shape[-2:]
    if down > 1:
        inp = F.avg_pool2d(inp, down, ceil_mode=True)
    x, hs, ws = _pad8(inp)
    d = alpha_to_weights(net(x))
    d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)[..., :hs, :ws]
    if down > 1:
        d = F.interpolate(d, scale_factor=down, mode="bilinear", align_corners=False)[..., :h, :w]
    return d


def tv(d: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per pixel (Eq. 14), (B, H, W) -> scalar."""
    return (d[..., 1:, :] - d[..., :-1, :]).abs().mean() + (d[..., :, 1:] - d[..., :, :-1]).abs().mean()


def train_defocus_net(left: torch.Tensor, right: torch.Tensor, blur_left: torch.Tensor,
                      blur_right: torch.Tensor, radii: torch.Tensor, cfg: ZeroShotConfig,
                      deadline: float | None = None, warm_target: torch.Tensor | None = None
                      ) -> tuple[DefocusNet, torch.Tensor, StageLog]:
    """Stage 2: fit G_D to this scene (Eq. 9-11 reblur loss + TV prior Eq. 13-14).

    Args:
        left, right: (C, H, W) views. blur_left/right: (L, C, H, W) layers reblurred by f_i.
        radii: (L,) signed layer radii (px): the defocus image of Eq. 13 is sum_i r_i D_i.

    Returns:
        (G_D, full-frame defocus weights D (L, H, W), log).
    """
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    c, h, w = left.shape
    n_layers = radii.numel()
    net = DefocusNet(2 * c, n_layers).to(left.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.gd_lr)
    inp = net_input(left, right)
    s2 = float(((left + right) / 2).mean().clamp_min(1e-6)) ** 2
    unit = 8 * cfg.gd_downsample
    crop = min(cfg.gd_crop * cfg.gd_downsample, h - h % unit, w - w % unit)
    crop -= crop % unit
    r = radii.view(1, -1, 1, 1).to(left.device)
    log = StageLog()
    stop = Plateau(2 * cfg.plateau_patience, cfg.plateau_tol)  # crops make this loss noisy
    gen = torch.Generator().manual_seed(cfg.seed)
    for it in range(cfg.gd_iters):
        ys = torch.randint(0, h - crop + 1, (cfg.gd_batch,), generator=gen).tolist()
        xs = torch.randint(0, w - crop + 1, (cfg.gd_batch,), generator=gen).tolist()
        sl = [(slice(y, y + crop), slice(x, x + crop)) for y, x in zip(ys, xs)]
        batch = torch.cat([inp[..., a, b] for a, b in sl])
        bl = torch.stack([blur_left[..., a, b] for a, b in sl]).float()  # (B, L, C, s, s)
        br = torch.stack([blur_right[..., a, b] for a, b in sl]).float()
        yl = torch.stack([left[:, a, b] for a, b in sl])
        yr = torch.stack([right[:, a, b] for a, b in sl])
        d = defocus_weights(net, batch, cfg.gd_downsample)  # (B, L, s, s)
        if warm_target is not None and it < cfg.gd_warm_iters:
            # warm start (speed lever, not in the thesis): imitate the stage-1 residual choice
            tgt = torch.stack([warm_target[:, a, b] for a, b in sl])
            loss = -(tgt * torch.log(d.clamp_min(1e-6))).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            log.iters = it + 1
            if past(deadline):
                log.stopped = "time budget"
                break
            continue
        if warm_target is not None and it == cfg.gd_warm_iters:
            for group in opt.param_groups:  # Eq. 10 then only fine-tunes the warm-started G_D
                group["lr"] = cfg.gd_lr * cfg.gd_finetune_lr
        pl = (d.unsqueeze(2) * bl).sum(1)
        pr = (d.unsqueeze(2) * br).sum(1)
        data = ((pl - yl).square().mean() + (pr - yr).square().mean()) / s2
        loss = data + cfg.tv_weight * tv((d * r).sum(1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log.record(loss.item(), stop, deadline):
            break
    with torch.no_grad():
        d_full = defocus_weights(net, inp, cfg.gd_downsample)[0]
    log.seconds = time.perf_counter() - start
    return net, d_full, log


def reblur_error(weights: torch.Tensor, stack: LayerStack, left: torch.Tensor, right: torch.Tensor) -> float:
    """Mean squared error of both views re-blurred through the blended MPI (Eq. 9-10 data term):
    (L, H, W) weights, (L, C, H, W) reblurred layers, (C, H, W) views -> float."""
    el = (blend_layers(weights, stack.blur_left) - left).square().mean()
    er = (blend_layers(weights, stack.blur_right) - right).square().mean()
    return float(el + er)


@dataclass
class DefocusStage:
    """Result of :func:`fit_defocus_map`.

    Attributes:
        weights: (L, H, W) float32 defocus weights D_i (G_D's, or the stage-1 fusion's when the
            guard rejected G_D).
        image: (C, H, W) float32 layers blended by ``weights``: the stage's output image.
        gd_image: (C, H, W) float32 layers blended by G_D's own weights (= ``image`` unless the
            guard rejected G_D; kept for diagnostics).
        source: "G_D", or "stage-1 <method> (<why>)" when the fusion's weights stand in.
        reblur_ratio: G_D's reblur error over the stage-1 fusion's.
        log: G_D's :class:`~dpcli.zeroshot.loop.StageLog` (losses, iters, stop reason, seconds).
        seconds: time of the whole stage (training, full-frame map, guard).
    """

    weights: torch.Tensor
    image: torch.Tensor
    gd_image: torch.Tensor
    source: str
    reblur_ratio: float
    log: StageLog
    seconds: float


def fit_defocus_map(left: torch.Tensor, right: torch.Tensor, stack: LayerStack, fusion: Fusion,
                    cfg: ZeroShotConfig, deadline: float | None = None) -> DefocusStage:
    """Stage 2: G_D trained on this scene (warm-started from the stage-1 fusion), then a guard
    (ours): G_D's full-frame reblur error (Eq. 10's data term) against the fusion's; a collapsed
    G_D (one layer everywhere) explains the views far worse and is not used, nor is a G_D the
    time budget stopped during its warm-up.

    Args:
        left, right: (C, H, W) views. stack: stage-1 :class:`LayerStack` with radii.
        fusion: stage-1 :class:`Fusion` (warm-start target and fallback).
        deadline: ``time.perf_counter()`` value G_D's loop stops at.

    Returns:
        :class:`DefocusStage`.
    """
    from dpcli.device import autocast

    start = time.perf_counter()
    if past(deadline):  # the budget is spent already: the fusion stands in, G_D is not built
        log = StageLog(stopped="time budget")
        return DefocusStage(fusion.weights, fusion.image, fusion.image,
                            f"stage-1 {fusion.method} (time budget exhausted before G_D)", float("nan"), log,
                            time.perf_counter() - start)
    with autocast(left.device, cfg.precision):
        _, weights, log = train_defocus_net(left, right, stack.blur_left, stack.blur_right, stack.radii, cfg,
                                            deadline, fusion.weights)
    weights = weights.float()
    gd_image = blend_layers(weights, stack.latent)
    ratio = reblur_error(weights, stack, left, right) / max(reblur_error(fusion.weights, stack, left, right), 1e-20)
    fallback = None
    if ratio > cfg.gd_max_reblur_ratio:
        fallback = f"G_D reblur error {ratio:.2f}x the stage-1 choice's"
    elif log.stopped == "time budget" and log.iters < cfg.gd_warm_iters:
        # budget cut G_D before it even matched its warm-start target: use that target rather
        # than a half-trained network
        fallback = "time budget hit during G_D warm-up"
    if fallback:
        return DefocusStage(fusion.weights, fusion.image, gd_image, f"stage-1 {fusion.method} ({fallback})", ratio,
                            log, time.perf_counter() - start)
    return DefocusStage(weights, gd_image, gd_image, "G_D", ratio, log, time.perf_counter() - start)
