"""Stage 3 of the zero-shot MPI method: non-uniform kernels per patch with G_F (thesis 004,
section 3.3, Eq. 12, 15), G_D fixed. Public stage function: :func:`fit_kernels`.

Each patch is a tile with a margin; inside it the loss of Eq. 10 is first minimised by variable
projection (the latent layers are the exact regularised LS solution for the current kernels, so
only G_F and Z are searched), then refined jointly with the latent map as free variables and the
edge-aware smoothness prior of Eq. 15, as in the thesis. Layers whose defocus weight is negligible
over a tile are skipped (most tiles see a few depths only).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dpcli.optics.conv import fast_len
from dpcli.optics.fourier import gradient_power, kernel_otf, taper_pad, wiener_joint
from dpcli.optics.windows import taper_window
from dpcli.zeroshot.config import ZeroShotConfig
from dpcli.zeroshot.kernels import layer_kernels
from dpcli.zeroshot.loop import Plateau, StageLog, past
from dpcli.zeroshot.networks import KernelGenerator

__all__ = ["KernelStage", "fit_kernels", "learn_kernels", "KernelModel", "prefit_generators", "Tiles",
           "make_tiles", "extract_tiles", "active_layers", "merge_weights", "edge_weights",
           "edge_aware_smoothness"]


@dataclass
class Tiles:
    """Patch grid with FFT tiles. Patch p covers rows ys[p]:ye[p], cols xs[p]:xe[p] of the image;
    its tile starts ``margin`` px before (coordinates of the taper-padded image)."""

    ys: list[int]
    ye: list[int]
    xs: list[int]
    xe: list[int]
    margin: int
    size: int
    grid: tuple[int, int]

    @property
    def count(self) -> int:
        return len(self.ys)


def make_tiles(h: int, w: int, grid: tuple[int, int], margin: int) -> Tiles:
    """The stage-3 patch grid over an (h, w) image, each tile ``margin`` px wider on every side."""
    gy, gx = grid
    by = [round(i * h / gy) for i in range(gy + 1)]
    bx = [round(j * w / gx) for j in range(gx + 1)]
    ys, ye, xs, xe = [], [], [], []
    for i in range(gy):
        for j in range(gx):
            ys.append(by[i]); ye.append(by[i + 1]); xs.append(bx[j]); xe.append(bx[j + 1])
    core = max(max(b - a for a, b in zip(ys, ye)), max(b - a for a, b in zip(xs, xe)))
    return Tiles(ys, ye, xs, xe, margin, fast_len(core + 2 * margin), grid)


def _fade_window(t: Tiles, ch: int, cw: int, like: torch.Tensor) -> torch.Tensor:
    """(T, T) window: 1 over the core + margin/2, raised cosine to 0 at the tile edge."""
    def axis(n_core: int) -> torch.Tensor:
        fade = max(t.margin // 2, 1)
        inner = taper_window(n_core + 2 * t.margin, fade, offset=1, length=fade + 1, dtype=like.dtype,
                             device=like.device)
        return F.pad(inner, (0, t.size - inner.numel()))
    return axis(ch)[:, None] * axis(cw)[None, :]


def extract_tiles(image: torch.Tensor, t: Tiles) -> torch.Tensor:
    """(C, H, W) -> (P, C, T, T) tiles (core + margin, tapered to the tile mean, zero-extended)."""
    c = image.shape[0]
    pad = taper_pad(image, t.margin + t.size)
    out = torch.empty(t.count, c, t.size, t.size, dtype=image.dtype, device=image.device)
    for p in range(t.count):
        y0, x0 = pad.top + t.ys[p] - t.margin, pad.left + t.xs[p] - t.margin
        tile = pad.data[:, y0 : y0 + t.size, x0 : x0 + t.size]
        win = _fade_window(t, t.ye[p] - t.ys[p], t.xe[p] - t.xs[p], image)
        mean = (tile * win).sum((-2, -1), keepdim=True) / win.sum()
        out[p] = mean + (tile - mean) * win
    return out


def tile_cores(maps: torch.Tensor, t: Tiles) -> list[torch.Tensor]:
    """(..., H, W) -> list of P core crops (..., h_p, w_p)."""
    return [maps[..., t.ys[p] : t.ye[p], t.xs[p] : t.xe[p]] for p in range(t.count)]


def stitch(cores: list[torch.Tensor], t: Tiles, h: int, w: int) -> torch.Tensor:
    out = torch.zeros(*cores[0].shape[:-2], h, w, dtype=cores[0].dtype, device=cores[0].device)
    for p, c in enumerate(cores):
        out[..., t.ys[p] : t.ye[p], t.xs[p] : t.xe[p]] = c
    return out


@dataclass
class KernelStage:
    """Stage-3 result."""

    aif: torch.Tensor  # (C, H, W)
    kernels: dict[str, torch.Tensor]  # {"f": (P, 2, K, K), "b": ...} learned largest kernels
    log: StageLog
    prefit_loss: float


class KernelModel(torch.nn.Module):
    """Two (front or back) or four (both) generators G_F; returns {"f"|"b": (P, 2, K, K)}."""

    def __init__(self, sides: list[str], patches: int, ksize: int, groups: int | None, seed: int):
        super().__init__()
        self.sides = sides
        self.gens = torch.nn.ModuleDict({
            f"{s}{v}": KernelGenerator(patches, ksize, groups, seed + 7 * i)
            for i, (s, v) in enumerate((s, v) for s in sides for v in "LR")})

    def forward(self) -> dict[str, torch.Tensor]:
        return {s: torch.stack([self.gens[f"{s}L"](), self.gens[f"{s}R"]()], 1) for s in self.sides}


def _fit(model: torch.nn.Module, target: dict[str, torch.Tensor], sides: list[str], iters: int,
         lr: float, deadline: float | None = None) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    value = float("nan")
    for _ in range(iters):
        if past(deadline):
            break
        out = model()
        loss = sum(((out[s] - target[s]).abs().sum((-2, -1)).mean() for s in sides))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
    return value


def prefit_generators(model: KernelModel, target: dict[str, torch.Tensor], iters: int,
                      lr: float, deadline: float | None = None) -> float:
    """Initialise G_F to reproduce the given kernels (parametric or measured), L1 fit.

    With one group per patch, a single-patch generator is fitted to the patch-mean kernel and
    copied into every group (48x cheaper); patches with their own targets (measured kernels)
    are then fine-tuned for a quarter of the iterations.
    """
    first = next(iter(model.gens.values()))
    n_p = first.z.shape[1]
    grouped = first.net[0].groups == n_p and n_p > 1
    if not grouped:
        return _fit(model, target, model.sides, iters, lr * 5, deadline)
    single = KernelModel(model.sides, 1, first.ksize, None, 0).to(first.z.device)
    mean_t = {s: target[s].mean(0, keepdim=True) for s in model.sides}
    loss = _fit(single, mean_t, model.sides, iters, lr * 5, deadline)
    with torch.no_grad():
        for key, gen in model.gens.items():
            src = single.gens[key]
            gen.z.copy_(src.z.expand_as(gen.z))
            for dst, one in zip(gen.net, src.net):
                if isinstance(dst, torch.nn.Conv2d):
                    reps = dst.weight.shape[0] // one.weight.shape[0]
                    dst.weight.copy_(one.weight.repeat(reps, 1, 1, 1))
                    dst.bias.copy_(one.bias.repeat(reps))
    if any(float((target[s] - mean_t[s]).abs().max()) > 1e-6 for s in model.sides):
        loss = _fit(model, target, model.sides, max(iters // 4, 1), lr * 2, deadline)
    return loss


def active_layers(weights: torch.Tensor, max_active: int, threshold: float) -> list[int]:
    """Layers solved for one patch in stage 3: at most ``max_active``, those most often the pixels'
    first choice (ties by mean weight), each above ``threshold`` somewhere. (L, h, w) -> sorted ids.

    Ranking by summed soft weight instead kept layers no pixel picks: -2.9 dB on Pixel 4 006 at 4."""
    n_layers = weights.shape[0]
    score = torch.bincount(weights.argmax(0).flatten(), minlength=n_layers).float() + weights.mean((-2, -1))
    keep = [i for i in score.argsort(descending=True)[:max_active].tolist() if float(weights[i].max()) > threshold]
    return sorted(keep)


def merge_weights(weights: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """(L, h, w) weights -> (len(kept), h, w): each dropped layer's weight goes to the kept layer
    nearest in radius (layer index), then per-pixel normalised (plain renormalising: -0.16 dB on 006)."""
    ids = torch.arange(weights.shape[0], device=kept.device)
    nearest = (ids[:, None] - kept[None, :]).abs().argmin(1)
    merged = torch.stack([weights[nearest == k].sum(0) for k in range(len(kept))])
    return merged / merged.sum(0, keepdim=True).clamp_min(1e-6)


def fit_kernels(left: torch.Tensor, right: torch.Tensor, weights: torch.Tensor,
                  radii: torch.Tensor, start_kernels: dict[str, torch.Tensor], cfg: ZeroShotConfig,
                  deadline_vp: float | None = None, deadline: float | None = None) -> KernelStage:
    """Stage 3 (section 3.3): non-uniform kernels per patch with G_F, G_D (weights) fixed.

    Args:
        left, right: (C, H, W). weights: (L, H, W) defocus weights from stage 2.
        radii: (L,). start_kernels: {"f"|"b": (P|1, 2, K, K)} kernels G_F is initialised to.
        deadline_vp: ``time.perf_counter()`` value the prefit and variable projection stop at;
            deadline: the value the joint refinement stops at.

    Returns:
        :class:`KernelStage` (aif (C, H, W) stitched from the refined latent, learned largest
        kernels {"f"|"b": (P, 2, K, K)}, log, prefit loss).
    """
    start = time.perf_counter()
    c, h, w = left.shape
    ksize = start_kernels["f"].shape[-1]
    t = make_tiles(h, w, cfg.grid, margin=ksize + 8)
    n_p = t.count
    sides = sorted({"f" if r >= 0 else "b" for r in radii.tolist()}, reverse=True)
    target = {s: start_kernels[s].expand(n_p, -1, -1, -1).contiguous() for s in sides}
    model = KernelModel(sides, n_p, ksize, cfg.gf_groups, cfg.seed).to(left.device)
    prefit = prefit_generators(model, target, cfg.gf_prefit_iters, cfg.gf_lr, deadline_vp)
    pairs = _ActivePairs(left, right, weights, radii, t, cfg)
    log = StageLog()
    latent = _variable_projection(pairs, model, left, right, cfg, log, deadline_vp)
    if cfg.gf_joint_iters > 0:
        latent = _joint_refinement(pairs, model, latent, left, right, cfg, log, deadline)
    with torch.no_grad():
        aif = stitch(pairs.blend(latent), t, h, w)
        kmax = {k: v.detach() for k, v in model().items()}
    log.seconds = time.perf_counter() - start
    return KernelStage(aif, kmax, log, prefit)


class _ActivePairs:
    """The (patch, layer) pairs stage 3 solves on the tiles ``t`` (see :func:`active_layers`; a
    dropped layer's weight is merged into the kept ones) and the data term of Eq. 10 over them.

    pa, la: (A,) patch and layer of each pair; d_act: per patch (l, h_p, w_p) merged weights;
    yl_c, yr_c: per patch (C, h_p, w_p) cores of the views.
    """

    def __init__(self, left: torch.Tensor, right: torch.Tensor, weights: torch.Tensor, radii: torch.Tensor,
                 t: Tiles, cfg: ZeroShotConfig):
        c, h, w = left.shape
        self.t, self.radii, self.shape = t, radii, (t.size, t.size)
        d_cores = tile_cores(weights, t)  # P x (L, h_p, w_p)
        self.yl_c, self.yr_c = tile_cores(left, t), tile_cores(right, t)
        pairs = []
        for p in range(t.count):
            pairs += [(p, i) for i in active_layers(d_cores[p], cfg.max_active, cfg.active_threshold)]
        self.pa = torch.tensor([p for p, _ in pairs], device=left.device)
        self.la = torch.tensor([i for _, i in pairs], device=left.device)
        s2 = float(((left + right) / 2).mean().clamp_min(1e-6)) ** 2
        self.norm = 2 * c * h * w * s2
        self.d_act = [merge_weights(d_cores[p], self.la[self.pa == p]) for p in range(t.count)]

    def spectra(self, kmax: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left and right OTFs (A, 1, T, T') of each pair's layer kernels for G_F's largest kernels."""
        kers = layer_kernels(kmax, self.radii)  # (P, L, 2, K, K); radii stay on the CPU (a list)
        ka = kers[self.pa, self.la]  # (A, 2, K, K)
        otf = kernel_otf(ka, self.shape)
        return otf[:, 0:1], otf[:, 1:2]  # (A, 1, T, T')

    def blend(self, maps: torch.Tensor) -> list[torch.Tensor]:
        """(A, C, T, T) per active pair -> per patch core blend sum_i D_i map_i."""
        t, m = self.t, self.t.margin
        out = []
        for p in range(t.count):
            sel = (self.pa == p).nonzero().flatten()
            ch, cw = t.ye[p] - t.ys[p], t.xe[p] - t.xs[p]
            core = maps[sel][..., m : m + ch, m : m + cw]  # (l, C, ch, cw)
            out.append((self.d_act[p].unsqueeze(1) * core).sum(0))
        return out

    def data_loss(self, bl: torch.Tensor, br: torch.Tensor) -> torch.Tensor:
        """Eq. 10's data term of reblurred pairs (A, C, T, T) against the views, normalised."""
        pl, pr = self.blend(bl), self.blend(br)
        tot = sum(((a - b).square().sum() for a, b in zip(pl, self.yl_c))) + \
            sum(((a - b).square().sum() for a, b in zip(pr, self.yr_c)))
        return tot / self.norm


def _variable_projection(pairs: _ActivePairs, model: KernelModel, left: torch.Tensor, right: torch.Tensor,
                         cfg: ZeroShotConfig, log: StageLog, deadline: float | None) -> torch.Tensor:
    """G_F fitted with the latent layers the exact regularised LS solution for its current kernels
    (only G_F and Z are searched). Returns the pairs' (A, C, T, T) latent for the final kernels."""
    t, shape = pairs.t, pairs.shape
    fl, fr = torch.fft.rfft2(extract_tiles(left, t)), torch.fft.rfft2(extract_tiles(right, t))  # (P, C, T, T')
    g2 = gradient_power(shape, left.device, left.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.gf_lr)
    stop = Plateau(cfg.plateau_patience, cfg.plateau_tol)
    fl_a, fr_a = fl[pairs.pa], fr[pairs.pa]  # observed spectra of each active pair's tile
    del fl, fr
    for it in range(cfg.gf_vp_iters):
        kl, kr = pairs.spectra(model())
        fx = wiener_joint(fl_a, fr_a, kl, kr, cfg.lam, g2)
        bl = torch.fft.irfft2(fx * kl, s=shape)
        br = torch.fft.irfft2(fx * kr, s=shape)
        loss = pairs.data_loss(bl, br)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log.record(loss.item(), stop, deadline):
            break
    with torch.no_grad():
        kl, kr = pairs.spectra(model())
        return torch.fft.irfft2(wiener_joint(fl_a, fr_a, kl, kr, cfg.lam, g2), s=shape)


def _joint_refinement(pairs: _ActivePairs, model: KernelModel, latent: torch.Tensor, left: torch.Tensor,
                      right: torch.Tensor, cfg: ZeroShotConfig, log: StageLog, deadline: float | None) -> torch.Tensor:
    """The latent map free (margins included: no wrap-around in the cores), G_F and Z trained with
    it, edge-aware smoothness on the latent image (Eq. 15). Returns the refined (A, C, T, T) latent."""
    c, h, w = left.shape
    shape = pairs.shape
    latent = latent.clone().requires_grad_(True)
    level = float(((left + right) / 2).mean())
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": cfg.gf_lr},
                            {"params": [latent], "lr": cfg.latent_lr * level}])
    comb = [(a + b) / 2 for a, b in zip(pairs.yl_c, pairs.yr_c)]
    edges = [edge_weights(cc / level, cfg.edge_sigma) for cc in comb]
    stop = Plateau(cfg.plateau_patience, cfg.plateau_tol)
    for it in range(cfg.gf_joint_iters):
        kl, kr = pairs.spectra(model())
        fx = torch.fft.rfft2(latent)
        bl = torch.fft.irfft2(fx * kl, s=shape)
        br = torch.fft.irfft2(fx * kr, s=shape)
        loss = pairs.data_loss(bl, br)
        xs = pairs.blend(latent)
        prior = sum((edge_aware_smoothness(x / level, e) * x[0].numel() for x, e in zip(xs, edges)))
        loss = loss + cfg.latent_weight * prior / (h * w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log.record(loss.item(), stop, deadline):
            break
    return latent.detach()


def edge_weights(image: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge map E of Eq. 15: weights exp(-|grad I| / sigma) per direction, low across edges."""
    g = image.mean(0)
    wx = torch.exp(-(g[:, 1:] - g[:, :-1]).abs() / sigma)
    wy = torch.exp(-(g[1:, :] - g[:-1, :]).abs() / sigma)
    return wx, wy


def edge_aware_smoothness(x: torch.Tensor, e: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """V_E of Eq. 15 (Xin et al.'s edge-aware smoothness, here its L1 form): mean of
    edge-weighted absolute latent gradients. x (C, h, w)."""
    wx, wy = e
    return (wx * (x[..., :, 1:] - x[..., :, :-1]).abs()).mean() + \
        (wy * (x[..., 1:, :] - x[..., :-1, :]).abs()).mean()


learn_kernels = fit_kernels  # the name before the stage modules
