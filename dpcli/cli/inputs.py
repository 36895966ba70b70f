"""How `--camera` / `--linear` / `--srgb` resolve for every DP command.

A camera profile's values become the defaults of the flags not given (:func:`resolve_input`); the
per-item decisions (encoding, domain, view order) are made by :mod:`dpcli.pipeline`, which
:meth:`ResolvedInput.pipeline_source` feeds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpcli.cameras import CameraProfile, load_profile
from dpcli.cli.options import InputOptions
from dpcli.errors import InputError

if TYPE_CHECKING:  # numpy is imported where an image is read: `--help` stays light
    import numpy as np


@dataclass(frozen=True)
class ResolvedInput:
    """The input bundle with a camera profile's defaults applied (explicit flags win)."""

    source: InputOptions
    profile: CameraProfile | None = None

    @property
    def focus(self) -> str:
        return self.profile.focus if self.profile else "front"

    @property
    def swap_hint(self) -> bool | None:
        return self.profile.swap_hint if self.profile else None

    @property
    def kernels(self) -> Path | None:
        return self.profile.kernels if self.profile else None

    def raw_options(self):
        return self.source.raw_options()

    def input_view(self, item) -> np.ndarray:
        """An input as the commands read it (raw levels applied; a pair's combined view), (C, H, W)."""
        from dpcli.io.pairs import load_single

        return load_single(item, raw=self.raw_options(), with_target=False)[0]

    def pipeline_source(self):
        """-> :class:`dpcli.pipeline.Source` (flags with the profile's defaults, and the profile)."""
        from dpcli.pipeline import Source

        return Source(srgb=self.source.srgb, swap_lr=self.source.swap_lr, raw=self.raw_options(),
                      profile=self.profile)


def resolve_input(source: InputOptions) -> ResolvedInput:
    """Apply ``--camera``'s profile: its black/white level, white sheets and encoding become the
    defaults of the flags not given. Raises InputError for an unknown or bad profile."""
    if source.camera is None:
        return ResolvedInput(source)
    try:
        profile = load_profile(source.camera)
    except InputError as exc:  # the flag the user typed names the problem
        raise InputError(f"--camera {exc.message}" if exc.path is None else exc.message, exc.path) from None
    changes: dict = {}
    if source.black_level is None and profile.black_level is not None:
        changes["black_level"] = profile.black_level
    if source.white_level is None and profile.white_level is not None:
        changes["white_level"] = profile.white_level
    if source.white_sheet is None and profile.white_sheet is not None:
        changes["white_sheet"] = profile.white_sheet
    if source.srgb is None:
        changes["srgb"] = profile.srgb
    resolved = dataclasses.replace(source, **changes).validate() if changes else source
    return ResolvedInput(resolved, profile)
