"""BaMBNet training (`002_*` Sec. III-D): (1) the COC net, unsupervised; (2) the deblurring net with
L1, defocus masks from the COC map, Algorithm 1 (meta-learned thresholds) and mask-weight annealing.

Paper schedule (DPDD, batch 2, Adam): COC net 10 epochs at 2e-5 with lambda = 10 (our TV is a
mean, see ``losses.BaMBNetCocLoss``); deblur net at 2e-4, thresholds r2..r4 (r1 = 0, r5 = 25)
initialised uniformly and updated every 5 epochs until they settle (about 45 epochs), then
fixed; the learning rate halves every 60 epochs; the mask weight anneals to 0; 200 epochs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dpcli.errors import DpError
from dpcli.train.data import Sample, to_device
from dpcli.train.loop import StageTrainer
from dpcli.train.losses import BaMBNetCocLoss, l1_loss, psnr_batch
from dpcli.train.stages import StageSpec, register_stage


def build_bambnet(name: str) -> nn.Module:
    """A fresh (randomly initialised) BaMBNet of a registered configuration name."""
    from dpcli.models.loading import create_model

    return create_model(name, pretrained=False)


def load_frozen(name: str, weights: Path | None) -> nn.Module:
    """A network for guidance (COC / defocus map): from ``weights`` (a checkpoint.pt of our stage 1,
    or a safetensors file) or the registry's pretrained weights; eval mode, no gradients."""
    from dpcli.models.loading import create_model

    if weights is None:
        net = create_model(name, pretrained=True)
    else:
        net = create_model(name, pretrained=False)
        path = Path(weights)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            state = next(iter(ckpt["nets"].values())) if "nets" in ckpt else ckpt
        net.load_state_dict({k: v.float() for k, v in state.items()})
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _pair(batch: Sample) -> Tensor:
    return torch.cat([batch["left"], batch["right"]], dim=1)


# ------------------------------------------------------------------------------ stage 1: COC net

@dataclass
class CocStageConfig:
    model: str = "bambnet_coc_small"
    lr: float = 2e-5
    lam: float = 0.01
    r_max: int = 25
    tv_start_step: int = 0
    srgb: bool = True


class BaMBNetCocTrainer(StageTrainer):
    """Stage 1: the COC network, trained without ground truth by the reblur geometric loss."""

    name = "bambnet-coc"

    def __init__(self, cfg: CocStageConfig, device: torch.device, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        self.cfg = cfg
        self.nets["coc"] = build_bambnet(cfg.model).to(device)
        self.loss = BaMBNetCocLoss(cfg.r_max, cfg.lam, srgb=cfg.srgb, tv_start_step=cfg.tv_start_step).to(device)
        self.optimizers["coc"] = torch.optim.Adam(self.nets["coc"].parameters(), lr=cfg.lr)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        opt = self.optimizers["coc"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            coc = self.run["coc"](_pair(batch))
        out = self.loss(batch["left"], batch["right"], coc.float(), step)
        out["loss"].backward()
        opt.step()
        return {k: float(v.detach()) for k, v in out.items()}

    @torch.no_grad()
    def validate(self, batches: list[Sample], step: int) -> dict[str, float]:
        geo, err = [], []
        for batch in batches:
            batch = to_device(batch, self.device)
            coc = self.nets["coc"](_pair(batch)).float()
            geo.append(float(self.loss(batch["left"], batch["right"], coc)["geometric"]))
            if "defocus" in batch:  # synthetic data: signed radius error against the true map
                err.append(float((coc.mean(1, keepdim=True) - batch["defocus"]).abs().mean()))
        out = {"val_geometric": float(np.mean(geo))}
        if err:
            out["val_coc_mae_px"] = float(np.mean(err))
        return out


# ------------------------------------------------------------------------------ Algorithm 1

def optimal_thresholds(costs: np.ndarray, edges: np.ndarray, current: Sequence[float]) -> list[float]:
    """Best ordered split of the COC axis among M branches (the outer problem of Eq. 10).

    Args:
        costs: (M, NB) summed validation L1 of branch i on the pixels of COC bin b (Eq. 9).
        edges: (NB + 1,) bin edges in px; edges[0] = r1, edges[-1] = r_{M+1}.
        current: the M - 1 free thresholds now; among equal-cost splits the closest one wins
            (bins without pixels cost nothing, so ties are common).
    Returns:
        The M - 1 free thresholds r2..rM minimising sum_i sum_{b in [r_i, r_{i+1})} costs[i, b]
        (exact, by dynamic programming over contiguous segments in branch order).
    """
    m, nb = costs.shape
    prefix = np.concatenate([np.zeros((m, 1)), np.cumsum(costs, axis=1)], axis=1)
    scale = max(float(np.abs(costs).sum()), 1e-12) * 1e-9
    best = np.full((m + 1, nb + 1), np.inf)
    arg = np.zeros((m + 1, nb + 1), dtype=int)
    best[0, 0] = 0.0
    for i in range(m):
        for e in range(nb + 1):
            starts = np.arange(e + 1)
            seg = prefix[i, e] - prefix[i, starts]
            total = best[i, starts] + seg
            if 0 < i + 1 < m:  # tie-break toward the current threshold i+1 (the end of segment i)
                total = total + scale * np.abs(edges[e] - current[i])
            j = int(np.argmin(total))
            best[i + 1, e], arg[i + 1, e] = total[j], starts[j]
    bounds, e = [], nb
    for i in range(m, 0, -1):
        s = arg[i, e]
        if i > 1:
            bounds.append(float(edges[s]))
        e = s
    return bounds[::-1]


@dataclass
class ThresholdSearch:
    """Algorithm 1 state: thresholds r1..rM (lower bounds; r_{M+1} = r_max), gradient-free updates.

    Every ``every`` steps the branch costs on the validation split move the free thresholds a
    ``damping`` fraction toward the optimal split; once no threshold moves more than ``tol`` px
    (or after ``max_steps``) they are fixed and the mask-weight annealing starts.
    """

    thresholds: list[float]
    r_max: float = 25.0
    every: int = 500
    max_steps: int = 10_000
    tol: float = 0.25
    damping: float = 0.5
    bins: int = 50
    settled_at: int | None = None
    history: list[list[float]] = dataclasses.field(default_factory=list)

    def update(self, costs: np.ndarray, step: int) -> tuple[list[float], float]:
        edges = np.linspace(0.0, self.r_max, self.bins + 1)
        target = optimal_thresholds(costs, edges, self.thresholds[1:])
        new = [self.thresholds[0]] + [old + self.damping * (t - old) for old, t in zip(self.thresholds[1:], target)]
        new = [float(v) for v in np.maximum.accumulate(new)]  # keep them ordered
        moved = max((abs(a - b) for a, b in zip(new, self.thresholds)), default=0.0)
        self.thresholds = new
        self.history.append(list(new))
        if moved < self.tol or step >= self.max_steps:
            self.settled_at = step
        return new, moved

    @property
    def settled(self) -> bool:
        return self.settled_at is not None


@torch.no_grad()
def branch_costs(net: nn.Module, batches: list[Sample], coc_of: Any, thresholds: Sequence[float],
                 r_max: float, bins: int, device: torch.device) -> np.ndarray:
    """Eq. 9 per branch and COC bin: run the deblurring net with *every* pixel routed to branch i
    (a constant COC inside branch i's range, mask weight 1) and sum |output - GT| over the pixels
    whose estimated COC falls into each bin.

    Branch outputs interact through the decoder, so routing all pixels to one branch is how we
    read "the cost of branch i at COC size r" off a network trained with mixed masks.
    """
    m = len(thresholds)
    edges = torch.linspace(0.0, r_max, bins + 1, device=device)
    costs = np.zeros((m, bins))
    bounds = list(thresholds) + [float("inf")]
    for batch in batches:
        batch = to_device(batch, device)
        coc = coc_of(batch)
        blur = coc.abs().amax(1)  # (B, H, W) as in defocus_masks
        idx = (torch.bucketize(blur.clamp(0, r_max - 1e-6), edges, right=True) - 1).clamp(0, bins - 1)
        for i in range(m):
            hi = min(bounds[i + 1], r_max)
            level = bounds[i] + 0.5 * (hi - bounds[i]) if hi > bounds[i] else bounds[i]
            route = torch.full_like(coc[:, :1], float(level))
            out = net(_pair(batch), route, 1.0).float()
            err = (out - batch["target"]).abs().mean(1)
            costs[i] += torch.bincount(idx.flatten(), weights=err.flatten(), minlength=bins).cpu().numpy()
    return costs


# ------------------------------------------------------------------------------ stage 2: deblur net

@dataclass
class DeblurStageConfig:
    model: str = "bambnet_deblur_small"
    coc_model: str = "bambnet_coc_small"
    coc_source: str = "auto"  # net | gt | auto (gt when the data has defocus maps and no COC weights)
    coc_weights: Path | None = None
    lr: float = 2e-4
    lr_halve_every: int = 0  # steps; 0 = constant
    r_max: float = 25.0
    search: bool = True
    search_every: int = 500
    search_max_steps: int = 10_000
    search_tol: float = 0.25
    anneal_steps: int = 20_000
    initial_thresholds: tuple[float, ...] | None = None  # default: uniform on [0, r_max)


class BaMBNetDeblurTrainer(StageTrainer):
    """Stage 2: the multi-branch deblurring net, L1 loss, COC-mask guidance, Algorithm 1, annealing."""

    name = "bambnet-deblur"

    def __init__(self, cfg: DeblurStageConfig, device: torch.device, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        self.cfg = cfg
        net = build_bambnet(cfg.model).to(device)
        m = len(net.cfg.branches)
        init = cfg.initial_thresholds or tuple(float(cfg.r_max * i / m) for i in range(m))
        self.search = ThresholdSearch(list(init), cfg.r_max, cfg.search_every, cfg.search_max_steps, cfg.search_tol)
        if not cfg.search:
            self.search.settled_at = 0
        self._set_thresholds(net, self.search.thresholds)
        self.nets["deblur"] = net
        self.coc_net = None
        if cfg.coc_source == "net" or (cfg.coc_source == "auto" and cfg.coc_weights is not None):
            self.coc_net = load_frozen(cfg.coc_model, cfg.coc_weights).to(device)
        self.optimizers["deblur"] = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        if cfg.lr_halve_every:
            self.schedulers["deblur"] = torch.optim.lr_scheduler.StepLR(self.optimizers["deblur"],
                                                                        cfg.lr_halve_every, 0.5)

    @staticmethod
    def _set_thresholds(net: nn.Module, thresholds: Sequence[float]) -> None:
        net.cfg = dataclasses.replace(net.cfg, thresholds=tuple(float(t) for t in thresholds))

    def coc_of(self, batch: Sample) -> Tensor:
        if self.coc_net is not None:
            with torch.no_grad():
                return self.coc_net(_pair(batch)).float()
        if "defocus" not in batch:
            raise DpError("BaMBNet deblur training needs a COC map: give --coc-weights (a trained COC net) "
                          "or data with NAME_defocus.tiff maps")
        return batch["defocus"]

    def guide_weight(self, step: int) -> float:
        """1 while the thresholds are searched, then annealed to 0 (``dpcli.models.blocks.mask_weight``)."""
        from dpcli.models.blocks import mask_weight

        if not self.search.settled:
            return 1.0
        return mask_weight(step - int(self.search.settled_at), self.cfg.anneal_steps)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        opt = self.optimizers["deblur"]
        opt.zero_grad(set_to_none=True)
        w = self.guide_weight(step)
        coc = self.coc_of(batch) if w > 0 else None
        with self.autocast():
            out = self.run["deblur"](_pair(batch), coc, w)
        loss = l1_loss(out.float(), batch["target"])
        loss.backward()
        opt.step()
        for sched in self.schedulers.values():
            sched.step()
        return {"loss": float(loss.detach()), "mask_weight": w}

    def on_step_end(self, step: int, val_batches: list[Sample]) -> dict[str, float]:
        if self.search.settled or not val_batches or step % self.search.every:
            return {}
        net = self.nets["deblur"]
        net.eval()
        costs = branch_costs(net, val_batches, self.coc_of, self.search.thresholds, self.cfg.r_max,
                             self.search.bins, self.device)
        net.train()
        new, moved = self.search.update(costs, step)
        self._set_thresholds(net, new)
        return {f"r{i + 1}": t for i, t in enumerate(new)} | {"threshold_shift": moved,
                                                                 "search_settled": float(self.search.settled)}

    @torch.no_grad()
    def predict(self, batch: Sample) -> Tensor:
        return self.nets["deblur"](_pair(batch)).float()  # inference: no masks

    @torch.no_grad()
    def validate(self, batches: list[Sample], step: int) -> dict[str, float]:
        out = super().validate(batches, step)
        w = self.guide_weight(step)
        if w > 0:
            guided = [psnr_batch(self.nets["deblur"](_pair(b), self.coc_of(b), w).float(), b["target"])
                      for b in (to_device(b, self.device) for b in batches)]
            out["val_psnr_guided"] = float(np.mean(guided))
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"search": dataclasses.asdict(self.search)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Thresholds, their history and the settling step come from the checkpoint; the search
        schedule (every, max_steps, tol) from the current options, so a resumed run can change it."""
        if "search" in state:
            saved = state["search"]
            for key in ("thresholds", "history", "settled_at"):
                setattr(self.search, key, saved[key])
            if self.search.settled_at is None and saved["settled_at"] is None and not self.cfg.search:
                self.search.settled_at = 0
            self._set_thresholds(self.nets["deblur"], self.search.thresholds)


# --- stages and their presets (dpdeblur train bambnet --stage NAME --config test|small|paper) ---------

BAMBNET_COC_PRESETS = {
    "test": dict(
        stage=dict(model="bambnet_coc_test", lr=1e-3, r_max=8, lam=0.01),
        loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    "small": dict(
        stage=dict(model="bambnet_coc_small", lr=1e-4, r_max=16, lam=0.01),
        loop=dict(steps=20_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    "paper": dict(  # 10 epochs, lr 2e-5, batch 2
        stage=dict(model="bambnet_coc", lr=2e-5, r_max=25, lam=0.01),
        loop=dict(epochs=10, batch_size=2, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
}
BAMBNET_DEBLUR_PRESETS = {
    "test": dict(
        stage=dict(model="bambnet_deblur_test", coc_model="bambnet_coc_test", lr=1e-3, r_max=8,
                   search_every=4, search_max_steps=12, anneal_steps=12),
        loop=dict(steps=16, batch_size=2, crop=32, val_every=8, ckpt_every=8)),
    "small": dict(
        stage=dict(model="bambnet_deblur_small", coc_model="bambnet_coc_small", lr=2e-4, r_max=16,
                   search_every=500, search_max_steps=5000, anneal_steps=10_000, lr_halve_every=10_000),
        loop=dict(steps=30_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    "paper": dict(  # 200 epochs; thresholds every 5 epochs until ~45; lr/2 per 60
        stage=dict(model="bambnet_deblur", coc_model="bambnet_coc", lr=2e-4, r_max=25,
                   search_every="5e", search_max_steps="45e", anneal_steps=20_000, lr_halve_every="60e"),
        loop=dict(epochs=200, batch_size=2, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
}


def _deblur_flags(flags) -> dict:
    return {"coc_weights": flags.get("coc_weights"), "coc_source": flags.get("coc_source"), "r_max": flags.get("r_max")}


def _coc_flags(flags) -> dict:
    return {"r_max": int(flags["r_max"]) if flags.get("r_max") else None}


register_stage(StageSpec("bambnet", "coc", BaMBNetCocTrainer, CocStageConfig, BAMBNET_COC_PRESETS, flags=_coc_flags))
register_stage(StageSpec("bambnet", "deblur", BaMBNetDeblurTrainer, DeblurStageConfig, BAMBNET_DEBLUR_PRESETS,
                         default=True, flags=_deblur_flags))
