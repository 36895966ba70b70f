"""BaMBNet training (dpcli/train/bambnet.py): each stage learns (a few steps on a fixed tiny batch lower
its loss measurably); Algorithm 1's thresholds."""
from __future__ import annotations

import numpy as np
import torch

from dpcli.train.bambnet import (
    BaMBNetCocTrainer,
    BaMBNetDeblurTrainer,
    CocStageConfig,
    DeblurStageConfig,
    ThresholdSearch,
    branch_costs,
    optimal_thresholds,
)
from dpcli.train.loop import seed_everything
from tests.train.conftest import improves, run_steps

CPU = torch.device("cpu")


def test_bambnet_coc_stage_learns(batch):
    seed_everything(0)
    trainer = BaMBNetCocTrainer(CocStageConfig(model="bambnet_coc_test", lr=3e-3, r_max=8, lam=0.001), CPU)
    losses = run_steps(trainer, batch, 20)
    assert improves(losses, 0.9), losses  # unsupervised reblur losses fall slowly but steadily


def test_bambnet_deblur_stage_learns(batch):
    seed_everything(0)
    cfg = DeblurStageConfig(model="bambnet_deblur_test", lr=2e-3, r_max=8, coc_source="gt", search=False,
                            anneal_steps=10)
    trainer = BaMBNetDeblurTrainer(cfg, CPU)
    losses = run_steps(trainer, batch, 20)
    assert improves(losses, 0.6), losses
    assert trainer.guide_weight(0) == 1.0 and trainer.guide_weight(10) == 0.0  # annealed away


# ------------------------------------------------------------------ Algorithm 1

def test_optimal_thresholds_exact_on_constructed_costs():
    edges = np.linspace(0, 10, 11)  # bins of 1 px
    centres = np.array([0.5, 3.5, 6.5])
    mids = (edges[:-1] + edges[1:]) / 2
    costs = np.abs(mids[None, :] - centres[:, None])  # branch i is best near its centre
    assert optimal_thresholds(costs, edges, [5.0, 7.0]) == [2.0, 5.0]


class _RoutedNet(torch.nn.Module):
    """Stand-in deblurring net for Algorithm 1: the error of branch i at true radius r is |r - c_i| / 100.

    The true radius rides in the right view (x[:, 3]); the routed branch is read from the COC level
    the search passes in (as the masks of the real net would route it).
    """

    def __init__(self, thresholds, centres):
        super().__init__()
        self.cfg = type("Cfg", (), {"thresholds": tuple(thresholds)})()
        self.centres = centres

    def forward(self, x, coc, weight):
        level = float(coc.flatten()[0])
        branch = max(i for i, t in enumerate(self.cfg.thresholds) if level >= t)
        return x[:, :3] + (x[:, 3:4] - self.centres[branch]).abs() / 100


def test_threshold_search_moves_toward_lower_validation_loss():
    gen = torch.Generator().manual_seed(0)
    radii = torch.rand(4, 1, 16, 16, generator=gen) * 12
    batches = [{"left": torch.rand(4, 3, 16, 16, generator=gen), "right": radii.expand(4, 3, 16, 16).clone(),
                "target": None}]
    batches[0]["target"] = batches[0]["left"].clone()
    centres = [1.0, 5.0, 9.0]
    search = ThresholdSearch([0.0, 4.0, 8.0], r_max=12.0, every=1, tol=0.05, damping=0.5, bins=48)
    net = _RoutedNet(search.thresholds, centres)
    coc_of = lambda b: b["right"][:, :1]  # noqa: E731

    def val_loss(th):  # total validation L1 with hard assignment of every pixel to its branch
        net.cfg.thresholds = tuple(th)
        bounds = list(th) + [float("inf")]
        r = radii.flatten()
        total = 0.0
        for i, c in enumerate(centres):
            sel = (r >= bounds[i]) & (r < bounds[i + 1])
            total += float((r[sel] - c).abs().sum() / 100)
        return total

    losses = [val_loss(search.thresholds)]
    for step in range(1, 20):
        costs = branch_costs(net, batches, coc_of, search.thresholds, 12.0, search.bins, CPU)
        new, _ = search.update(costs, step)
        losses.append(val_loss(new))
        if search.settled:
            break
    assert search.settled
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:]))  # monotone improvement
    assert losses[-1] < 0.9 * losses[0]
    assert np.allclose(search.thresholds[1:], [3.0, 7.0], atol=0.35)  # midpoints between the centres
