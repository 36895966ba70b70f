"""Training stages by family: each family's training module registers its stages here.

A :class:`StageSpec` says how to build the stage's trainer from its config dataclass, its named
presets (``test`` / ``small`` / ``paper``: stage options and loop defaults), which command-line
flags it takes, and whether DP views drive it. :mod:`dpcli.train.runner` and ``dpdeblur train``
look stages up here; they hold no family names. A family names its training module in its
:class:`dpcli.models.registry.Family` (``training=``), imported on first use; a family defined in
one file (a plug-in, a test) may register its stages right there.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from dpcli.errors import DpError


def _all_views(options: Mapping[str, Any], has_maps: bool) -> bool:
    return True


@dataclass(frozen=True)
class StageSpec:
    """One training stage of a family.

    family, name: ``dpdeblur train FAMILY --stage NAME``.
    trainer: (config, device, precision) -> :class:`dpcli.train.loop.StageTrainer`.
    config: the stage's options dataclass (its fields are what ``--set KEY=VALUE`` may give).
    presets: config name -> {"stage": options, "loop": loop defaults}.
    default: the stage run when ``--stage`` is not given.
    uses_dp: (options, data has defocus maps) -> whether DP views drive the stage (then
        90-degree rotations are off and flips swap L/R).
    flags: (the command's stage flags: coc_weights, coc_source, defocus_weights, r_max) -> options.
    synth_options: what the stage needs of synthetic data beyond the user's options (e.g.
        ``{"optics": True}``: the scenes' optics alone, :class:`dpcli.train.data.SynthDataset`).
    """

    family: str
    name: str
    trainer: Callable[..., Any]
    config: type
    presets: Mapping[str, Mapping[str, Any]]
    default: bool = False
    uses_dp: Callable[[Mapping[str, Any], bool], bool] = _all_views
    flags: Callable[[Mapping[str, Any]], dict] = field(default=lambda flags: {})
    synth_options: Mapping[str, Any] = field(default_factory=dict)


_STAGES: dict[tuple[str, str], StageSpec] = {}


def register_stage(spec: StageSpec) -> StageSpec:
    key = (spec.family, spec.name)
    if key in _STAGES and _STAGES[key] != spec:
        raise ValueError(f"training stage {spec.family}/{spec.name} registered twice")
    _STAGES[key] = spec
    return spec


def stages_of(family: str) -> dict[str, StageSpec]:
    """Stages of a family (its training module imported on first use); {} when it has none."""
    from dpcli.models.registry import get_family, list_families

    if family not in {f.name for f in list_families()}:
        return {}
    module = get_family(family).training
    if module:
        importlib.import_module(module)
    return {name: spec for (fam, name), spec in _STAGES.items() if fam == family}


def trainable_families() -> list[str]:
    from dpcli.models.registry import list_families

    return [f.name for f in list_families() if stages_of(f.name)]


def get_stage(family: str, stage: str | None) -> StageSpec:
    """The stage ``stage`` of ``family`` (None: its default); DpError names the valid ones."""
    stages = stages_of(family)
    if not stages:
        from dpcli.models.registry import list_families

        known = {f.name for f in list_families()}
        what = f"{family} has no training stages in dpdeblur" if family in known else f"unknown model '{family}'"
        raise DpError(f"{what} (trainable: {', '.join(trainable_families())})")
    if stage is None:
        return next((s for s in stages.values() if s.default), next(iter(stages.values())))
    if stage not in stages:
        raise DpError(f"{family} has stages {', '.join(stages)}, not '{stage}'")
    return stages[stage]


def preset(family: str, stage: str, config: str) -> dict[str, Any]:
    """Stage options and loop defaults of a named configuration (copies)."""
    spec = get_stage(family, stage)
    if config not in spec.presets:
        raise DpError(f"no '{config}' configuration for {family} stage {stage} "
                      f"(valid: {', '.join(sorted(spec.presets))})")
    entry = spec.presets[config]
    return {"stage": dict(entry["stage"]), "loop": dict(entry["loop"])}


__all__ = ["StageSpec", "register_stage", "stages_of", "get_stage", "preset", "trainable_families"]
