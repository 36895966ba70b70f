"""DP-correct augmentation, DPDD patch recipe, folder/synthetic datasets, resumable DDP sampling."""
from __future__ import annotations

import random

import pytest
import torch

from dpcli.train.data import (
    AugmentConfig,
    FolderDataset,
    PatchRecipe,
    StepBatchSampler,
    augment,
    hflip_dp,
    rot90,
    select_sharp_boxes,
    sliding_boxes,
    vflip,
)
from tests.train.conftest import render_layers, texture


def _scene(seed: int = 0, size: int = 40):
    gen = torch.Generator().manual_seed(seed)
    sharp = texture(size, gen)
    fg = torch.zeros(1, size, size)
    fg[:, 8:26, 5:22] = 1
    return sharp, [1 - fg, fg], [3.0, -2.0]


class TestHorizontalFlip:
    def test_flip_swaps_views_and_keeps_radius_sign(self):
        """flip(render(I, r)) with L/R swapped == render(flip(I), flip(r)) exactly (same signed radii)."""
        sharp, masks, radii = _scene()
        left, right, comb = render_layers(sharp, masks, radii)
        flipped = hflip_dp({"left": left, "right": right, "combined": comb})
        ref_l, ref_r, ref_c = render_layers(sharp.flip(-1), [m.flip(-1) for m in masks], radii)
        assert torch.allclose(flipped["left"], ref_l, atol=1e-5)
        assert torch.allclose(flipped["right"], ref_r, atol=1e-5)
        assert torch.allclose(flipped["combined"], ref_c, atol=1e-5)

    def test_flip_without_swap_is_the_negated_radius(self):
        """The alternative reading: a mirrored left view is the left view of radius -r (so no swap = sign flip)."""
        sharp, masks, radii = _scene(1)
        left, right, _ = render_layers(sharp, masks, radii)
        neg_l, neg_r, _ = render_layers(sharp.flip(-1), [m.flip(-1) for m in masks], [-r for r in radii])
        assert torch.allclose(left.flip(-1), neg_l, atol=1e-5)
        assert torch.allclose(right.flip(-1), neg_r, atol=1e-5)
        # ... and differs clearly from the same-sign render: the swap is not optional
        same_l, _, _ = render_layers(sharp.flip(-1), [m.flip(-1) for m in masks], radii)
        assert (left.flip(-1) - same_l).abs().max() > 0.02

    def test_defocus_map_mirrored_not_negated(self):
        d = torch.arange(12.0).view(1, 3, 4) - 5
        out = hflip_dp({"left": d.clone(), "right": -d, "defocus": d})
        assert torch.equal(out["defocus"], d.flip(-1))
        assert torch.equal(out["left"], (-d).flip(-1)) and torch.equal(out["right"], d.flip(-1))


def test_vertical_flip_commutes_with_dp_blur():
    sharp, masks, radii = _scene(2)
    left, right, _ = render_layers(sharp, masks, radii)
    out = vflip({"left": left, "right": right})
    ref_l, ref_r, _ = render_layers(sharp.flip(-2), [m.flip(-2) for m in masks], radii)
    assert torch.allclose(out["left"], ref_l, atol=1e-5) and torch.allclose(out["right"], ref_r, atol=1e-5)


def test_rot90_only_where_modelled():
    assert AugmentConfig(dp=True).rot90_enabled() is False
    assert AugmentConfig(dp=False).rot90_enabled() is True
    with pytest.raises(ValueError, match="disparity"):
        AugmentConfig(dp=True, rot90=True).rot90_enabled()
    assert AugmentConfig(dp=True, rot90=True, allow_dp_rot90=True).rot90_enabled()
    # a rotated DP render has vertical disparity: no horizontal-disparity render of the rotated scene matches it
    sharp, masks, radii = _scene(3)
    left, _, _ = render_layers(sharp, masks, radii)
    rotated = rot90({"left": left}, 1)["left"]
    for sign in (1, -1):
        ref_l, _, _ = render_layers(torch.rot90(sharp, 1, (-2, -1)), [torch.rot90(m, 1, (-2, -1)) for m in masks],
                                    [sign * r for r in radii])
        assert (rotated - ref_l).abs().max() > 0.02


def test_augment_crop_is_shared_and_seeded():
    sample = {k: torch.rand(3, 50, 60) for k in ("left", "right", "combined", "target")}
    sample["defocus"] = torch.rand(1, 50, 60)
    cfg = AugmentConfig(crop=32)
    a = augment(sample, cfg, random.Random(7))
    b = augment(sample, cfg, random.Random(7))
    assert all(v.shape[-2:] == (32, 32) for v in a.values())
    assert all(torch.equal(a[k], b[k]) for k in a)


class TestPatchRecipe:
    def test_dpdd_grid(self):
        boxes = sliding_boxes(1120, 1680, 512, 0.6)
        assert len(boxes) == 18  # 3 rows x 6 columns, stride 205 px
        assert boxes[1] == (0, 205) and boxes[-1] == (410, 1025)

    def test_drops_least_sharp(self):
        img = torch.full((3, 64, 128), 0.5)
        img[:, :, 64:] = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
        boxes = sliding_boxes(64, 128, 32, 0.5)  # 3 x 7, the 9 windows with x <= 32 are flat
        kept = select_sharp_boxes(img, boxes, 32, drop=0.3)
        assert len(kept) == round(len(boxes) * 0.7)  # 15: 6 dropped, all flat
        assert sum(x <= 32 for _, x in kept) == 3 and all(b in kept for b in boxes if b[1] >= 48)
        kept = select_sharp_boxes(img, boxes, 32, drop=0.45)  # 9 dropped: exactly the flat ones
        assert sorted(kept) == sorted(b for b in boxes if b[1] >= 48)


def test_folder_dataset(tiny_dpdd):
    ds = FolderDataset(tiny_dpdd, "train", AugmentConfig(crop=32))
    assert len(ds) == 4
    s = ds[(0, 3)]
    assert set(s) == {"left", "right", "combined", "target", "defocus"}
    assert s["left"].shape == (3, 32, 32) and s["defocus"].shape == (1, 32, 32)
    assert set(torch.unique(s["defocus"].abs()).tolist()) <= {1.0, 4.0}
    patches = FolderDataset(tiny_dpdd, "train", AugmentConfig(crop=None, hflip=False, vflip=False),
                            recipe=PatchRecipe(size=32, overlap=0.5, drop=0.3))
    assert len(patches) == 4 * round(4 * 0.7)  # 2 x 2 windows of 32 px in 48 px, 70% kept
    assert patches[(0, 0)]["target"].shape == (3, 32, 32)


def test_load_item_combines_views_in_linear_light(tmp_path):
    """Without a combined file the mean of the views is taken in linear light for sRGB data
    (0 and 1 average to sRGB 0.735, not 0.5), and plainly for linear data."""
    import numpy as np

    from dpcli.io.images import write_image
    from dpcli.train.data import FolderItem, load_item

    left, right = np.zeros((3, 8, 8), np.float32), np.ones((3, 8, 8), np.float32)
    paths = {k: tmp_path / f"{k}.png" for k in ("left", "right", "target")}
    for k, v in dict(left=left, right=right, target=left).items():
        write_image(paths[k], v, 16)
    item = FolderItem("a", paths["left"], paths["right"], None, paths["target"])
    srgb_mean = float(load_item(item)["combined"].mean())
    assert abs(srgb_mean - 0.7354) < 1e-3  # linear_to_srgb(0.5)
    assert abs(float(load_item(item, srgb=False)["combined"].mean()) - 0.5) < 1e-6


class TestStepBatchSampler:
    def test_resume_gives_the_same_batches(self):
        full = list(StepBatchSampler(10, 2, seed=3, total_steps=12))
        tail = list(StepBatchSampler(10, 2, seed=3, total_steps=12, start_step=7))
        assert tail == full[7:]
        assert StepBatchSampler(10, 2, seed=3, total_steps=12).batch_for_step(9) == full[9]

    def test_ranks_get_disjoint_shards(self):
        a = [k for b in StepBatchSampler(12, 2, 0, 3, rank=0, world_size=2) for k, _ in b]
        b = [k for b in StepBatchSampler(12, 2, 0, 3, rank=1, world_size=2) for k, _ in b]
        assert not set(a) & set(b) and len(set(a) | set(b)) == 12

    def test_epochs_reshuffle_with_new_seeds(self):
        batches = list(StepBatchSampler(4, 2, 0, 4))
        keys = [k for b in batches for k in b]
        assert sorted(i for i, _ in keys[:4]) == [0, 1, 2, 3] == sorted(i for i, _ in keys[4:])
        assert {s for _, s in keys[:4]}.isdisjoint({s for _, s in keys[4:]})


def test_synth_dataset_is_deterministic_and_native_resolution():
    from dpcli.train.data import SynthDataset

    ds = SynthDataset(length=8, size=48, camera="phone")
    a, b = ds[(1, 99)], ds[(1, 99)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["left"].shape == (3, 48, 48) and a["defocus"].shape == (1, 48, 48)
    assert float(a["defocus"].abs().max()) > 2.0  # Pixel-like radii survive a small crop (no rescaling)
    assert not ds.srgb


def test_device_rendering_path_matches_in_worker_rendering():
    """GPU path: scenes drawn in __getitem__ (PendingScene), kept as a list by collate, rendered by
    materialise on the device; on the CPU it gives exactly the samples of the direct path."""
    from dpcli.train.data import PendingScene, SynthDataset, collate

    opts = dict(length=8, size=40, camera="dslr", isp=True, highlight_prob=0.5)
    direct = collate([SynthDataset(**opts)[(i, 50 + i)] for i in range(2)])
    ds = SynthDataset(**opts)
    ds.set_device("cpu")
    assert ds.render_device is None  # a CPU renders in the workers themselves
    ds.render_device = torch.device("cpu")  # force the device path (what set_device("cuda") does)
    pending = collate([ds[(i, 50 + i)] for i in range(2)])
    assert isinstance(pending, list) and isinstance(pending[0], PendingScene)
    # the layers travel cropped to their coverage: fewer values than the full-frame stack
    sent = sum(c.numel() + a.numel() + r.numel() for _, _, c, a, r in pending[0].layers)
    assert sent < 5 * 40 * 40 * len(pending[0].layers)
    batch = ds.materialise(pending)
    assert set(batch) == set(direct) and all(torch.equal(batch[k], direct[k]) for k in batch)
    assert ds.srgb and batch["left"].shape == (2, 3, 40, 40)


def test_dslr_samples_are_the_stored_pipeline_values():
    """sRGB samples of a DSLR scene are its stored (quantised) values, target included."""
    from dpcli.train.data import SynthDataset

    ds = SynthDataset(length=4, size=32, camera="dslr", isp=True)
    ds.augment_cfg.hflip = ds.augment_cfg.vflip = False
    s = ds[(0, 7)]
    codes = s["target"] * 65535
    assert torch.allclose(codes, codes.round(), atol=1e-2)


def test_a_scene_in_focus_everywhere_has_the_capture_itself_as_target():
    """synth sharp_prob: scenes inside the depth of field (|r| <= IN_FOCUS_PX) teach identity: the
    target is the stored capture (noise, JPEG, palette and all), not the clean image."""
    from dpcli.train.data import IN_FOCUS_PX, SynthDataset

    ds = SynthDataset(length=4, size=48, camera="dslr", sharp_prob=1.0)
    for i in range(2):
        s = ds[i]
        assert float(s["defocus"].abs().max()) <= IN_FOCUS_PX
        assert torch.equal(s["target"], s["combined"])
    blurred = SynthDataset(length=4, size=48, camera="dslr", sharp_prob=0.0)[0]
    assert float(blurred["defocus"].abs().max()) > IN_FOCUS_PX
    assert not torch.equal(blurred["target"], blurred["combined"])
