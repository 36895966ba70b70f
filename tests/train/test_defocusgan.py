"""DefocusGAN training (dpcli/train/defocusgan.py): the defocus-map and generator stages learn (a few steps
on a fixed tiny batch lower the loss measurably)."""
from __future__ import annotations

import torch

from dpcli.train.defocusgan import (
    DefocusGANGeneratorTrainer,
    DefocusMapStageConfig,
    DefocusMapTrainer,
    GeneratorStageConfig,
)
from dpcli.train.loop import seed_everything
from tests.train.conftest import improves, run_steps

CPU = torch.device("cpu")


def test_defocus_map_stage_learns_and_alternates(batch):
    seed_everything(0)
    cfg = DefocusMapStageConfig(model="defocusgan_defocusnet_test", lr=3e-3, map_first_steps=20, alternate_every=2)
    trainer = DefocusMapTrainer(cfg, CPU)
    assert [trainer.phase(s) for s in (0, 19, 20, 21, 22, 23, 24)] == ["map"] * 2 + ["kernels"] * 2 + ["map"] * 2 + ["kernels"]
    losses = run_steps(trainer, batch, 20)
    assert improves(losses, 0.9), losses  # unsupervised reblur losses fall slowly but steadily
    net = trainer.nets["defocus"]
    bank_before = net.kernel_bank.weight.detach().clone()
    body_before = net.stem.conv.weight.detach().clone()
    trainer.train_step(batch, 20)  # a kernel step: the bank moves, the map net does not
    assert not torch.equal(bank_before, net.kernel_bank.weight)
    assert torch.equal(body_before, net.stem.conv.weight)


def test_defocus_map_supervised_term_pulls_the_map_to_ground_truth(batch):
    assert "defocus" in batch
    errors = {}
    for weight in (0.0, 1.0):
        seed_everything(0)
        cfg = DefocusMapStageConfig(model="defocusgan_defocusnet_test", lr=3e-3, supervised_weight=weight)
        trainer = DefocusMapTrainer(cfg, CPU)
        run_steps(trainer, batch, 25)
        with torch.no_grad():
            pred = trainer.nets["defocus"](torch.cat([batch["left"], batch["right"]], 1)).mean(1, keepdim=True)
        errors[weight] = float((pred - batch["defocus"]).abs().mean())
    assert errors[1.0] < 0.9 * errors[0.0], errors  # a tiny net: mostly the offset, hardly structure


def test_defocusgan_generator_stage_learns(batch):
    seed_everything(0)
    cfg = GeneratorStageConfig(model="defocusgan_generator_test", defocus_source="gt", lr=2e-3, anneal_steps=10,
                               disc_width=8, perceptual=False)
    trainer = DefocusGANGeneratorTrainer(cfg, CPU)
    content = run_steps(trainer, batch, 20, key="content")
    assert improves(content, 0.6), content
