"""BlurNet's training labels and stage (dpcli.train.blurnet)."""
from __future__ import annotations

import torch

from dpcli.optics import blur, disk_kernel, srgb_to_linear
from dpcli.synth.scene import make_test_scene
from dpcli.train.blurnet import BlurNetTrainer, BlurStageConfig, focus_labels
from dpcli.train.loop import seed_everything


def _edge(value: float = 0.8) -> torch.Tensor:
    sharp = torch.full((1, 3, 64, 64), 0.1)
    sharp[..., :, 32:] = value  # one vertical edge
    return srgb_to_linear(sharp)


def test_labels_call_a_blurred_edge_blurred_and_a_crisp_one_sharp_and_leave_flat_regions_out():
    sharp = _edge()
    blurred = blur(sharp, disk_kernel(3.0)[None])
    label, weight = focus_labels(sharp, blurred, torch.full((1, 1, 64, 64), 3.0))
    assert float(label[..., 30:34].min()) == 1 and float(weight[..., 30:34].min()) == 1  # the lost edge
    assert float(weight[..., :12].max()) == 0 and float(weight[..., 52:].max()) == 0  # flat: nothing to undo
    label, weight = focus_labels(sharp, sharp, torch.zeros(1, 1, 64, 64))
    assert float(label.max()) == 0 and float(weight[..., 30:34].min()) == 1  # the crisp edge: in focus
    assert float(weight[..., :12].max()) == 0


def test_labels_leave_out_the_band_between_in_focus_and_blurred():
    sharp = _edge()
    _, weight = focus_labels(sharp, blur(sharp, disk_kernel(1.0)[None]), torch.full((1, 1, 64, 64), 1.0))
    assert float(weight.max()) == 0


def test_blurnet_stage_learns_a_fixed_batch():
    seed_everything(0)
    scenes = [make_test_scene(48, seed=i, max_radius=5.0, focus_mode="middle") for i in range(2)]
    lin = [make_test_scene(48, seed=i, max_radius=5.0, focus_mode="middle", output="linear") for i in range(2)]
    batch = {"combined": torch.stack([s.combined for s in scenes]).clamp(0, 1),
             "optics_sharp": torch.stack([s.sharp for s in lin]),
             "optics_combined": torch.stack([s.combined for s in lin]),
             "defocus": torch.stack([s.defocus for s in scenes])}
    trainer = BlurNetTrainer(BlurStageConfig(model="blurnet_test", lr=1e-2), torch.device("cpu"))
    trainer.distribute(trainer.dist)
    trainer.train_mode(True)
    losses = [trainer.train_step(batch, i)["loss"] for i in range(40)]
    assert min(losses[-5:]) < 0.7 * losses[0]
    trainer.train_mode(False)
    scores = trainer.validate([batch], 40)
    assert scores["val_accuracy"] > 0.7 and scores["val_loss"] < losses[0]


def test_only_stages_that_ask_get_the_scenes_optics():
    from dpcli.train.data import SynthDataset
    from dpcli.train.stages import get_stage

    plain, withopt = SynthDataset(length=1, size=32, camera="dslr"), SynthDataset(length=1, size=32, camera="dslr",
                                                                                   optics=True)
    assert not any(k.startswith("optics_") for k in plain[0])
    sample = withopt[0]
    assert sample["optics_sharp"].shape == sample["optics_combined"].shape == sample["combined"].shape
    assert get_stage("blurnet", "blur").synth_options == {"optics": True}
    assert dict(get_stage("bambnet", "deblur").synth_options) == {}
