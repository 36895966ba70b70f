"""Named training configurations: ``test`` (seconds, CI), ``small`` (CPU-trainable), ``paper``.

Each preset gives the stage options and the loop defaults. Schedules written in *epochs* (the
papers' unit) are turned into steps once the dataset size is known (:func:`epochs_to_steps`).
"""
from __future__ import annotations

from typing import Any

STAGES = {"bambnet": ("coc", "deblur"), "defocusgan": ("defocus", "generator")}
DEFAULT_STAGE = {"bambnet": "deblur", "defocusgan": "generator"}

# loop keys: steps | epochs, batch_size, crop, recipe (DPDD patch recipe), val_every, ckpt_every
PRESETS: dict[tuple[str, str, str], dict[str, Any]] = {
    # ---------------------------------------------------------------- BaMBNet
    ("bambnet", "coc", "test"): dict(
        stage=dict(model="bambnet_coc_test", lr=1e-3, r_max=8, lam=0.01),
        loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    ("bambnet", "coc", "small"): dict(
        stage=dict(model="bambnet_coc_small", lr=1e-4, r_max=16, lam=0.01),
        loop=dict(steps=20_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    ("bambnet", "coc", "paper"): dict(  # 10 epochs, lr 2e-5, batch 2
        stage=dict(model="bambnet_coc", lr=2e-5, r_max=25, lam=0.01),
        loop=dict(epochs=10, batch_size=2, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
    ("bambnet", "deblur", "test"): dict(
        stage=dict(model="bambnet_deblur_test", coc_model="bambnet_coc_test", lr=1e-3, r_max=8,
                   search_every=4, search_max_steps=12, anneal_steps=12),
        loop=dict(steps=16, batch_size=2, crop=32, val_every=8, ckpt_every=8)),
    ("bambnet", "deblur", "small"): dict(
        stage=dict(model="bambnet_deblur_small", coc_model="bambnet_coc_small", lr=2e-4, r_max=16,
                   search_every=500, search_max_steps=5000, anneal_steps=10_000, lr_halve_every=10_000),
        loop=dict(steps=30_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    ("bambnet", "deblur", "paper"): dict(  # 200 epochs; thresholds every 5 epochs until ~45; lr/2 per 60
        stage=dict(model="bambnet_deblur", coc_model="bambnet_coc", lr=2e-4, r_max=25,
                   search_every="5e", search_max_steps="45e", anneal_steps=20_000, lr_halve_every="60e"),
        loop=dict(epochs=200, batch_size=2, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
    # ---------------------------------------------------------------- DefocusGAN
    ("defocusgan", "defocus", "test"): dict(
        stage=dict(model="defocusgan_defocusnet_test", lr=1e-3, map_first_steps=6, alternate_every=3),
        loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    ("defocusgan", "defocus", "small"): dict(
        stage=dict(model="defocusgan_defocusnet_small", lr=1e-4, map_first_steps=5000, alternate_every=2500),
        loop=dict(steps=15_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    ("defocusgan", "defocus", "paper"): dict(  # map 10 epochs, then alternate every 5 to 30; batch 4
        stage=dict(model="defocusgan_defocusnet", lr=2e-5, map_first_steps="10e", alternate_every="5e"),
        loop=dict(epochs=30, batch_size=4, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
    ("defocusgan", "generator", "test"): dict(
        stage=dict(model="defocusgan_generator_test", defocus_model="defocusgan_defocusnet_test", lr=1e-3,
                   anneal_steps=8, disc_width=8),
        loop=dict(steps=12, batch_size=2, crop=32, val_every=6, ckpt_every=6)),
    ("defocusgan", "generator", "small"): dict(
        stage=dict(model="defocusgan_generator_small", defocus_model="defocusgan_defocusnet_small", lr=2e-4,
                   anneal_steps=10_000, lr_halve_every=10_000, disc_width=32),
        loop=dict(steps=30_000, batch_size=2, crop=128, val_every=250, ckpt_every=250)),
    ("defocusgan", "generator", "paper"): dict(  # 512 px, lr 2e-4 halved per 30 epochs, ~90 epochs, batch 4
        stage=dict(model="defocusgan_generator", defocus_model="defocusgan_defocusnet", lr=2e-4,
                   anneal_steps=20_000, lr_halve_every="30e", disc_width=64),
        loop=dict(epochs=90, batch_size=4, crop=512, recipe=True, val_every=1000, ckpt_every=1000)),
}


def preset(model: str, stage: str, config: str) -> dict[str, Any]:
    key = (model, stage, config)
    if key not in PRESETS:
        from dpcli.errors import DpError

        valid = ", ".join(sorted({k[2] for k in PRESETS}))
        raise DpError(f"no '{config}' configuration for {model} stage {stage} (valid: {valid})")
    entry = PRESETS[key]
    return {"stage": dict(entry["stage"]), "loop": dict(entry["loop"])}


def epochs_to_steps(value: Any, steps_per_epoch: int) -> Any:
    """``"5e"`` -> 5 epochs in steps; numbers pass through."""
    if isinstance(value, str) and value.endswith("e"):
        return max(1, int(round(float(value[:-1]) * steps_per_epoch)))
    return value
