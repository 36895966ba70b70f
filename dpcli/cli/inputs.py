"""How `--camera` / `--linear` / `--srgb` resolve for every DP command.

Encoding of the views (``--srgb/--linear`` not given), first rule that applies:
1. the camera profile's ``input.space``;
2. raw planes (a black level from ``--black-level`` or the profile): linear;
3. Dual Pixel RAW files: as rendered (sRGB; ``--linear`` renders linear);
4. image files: float (32-bit TIFF) and 16-bit GREY files are linear (DP raw planes are grey;
   a camera's sRGB output is colour), everything else (8-bit, colour) is sRGB.
A grey 16-bit pair whose values sit above a black level (darkest pixel >= 256 counts, brightest
<= 16383: 14-bit raw counts) gets a note suggesting ``--camera pixel4`` or ``--black-level``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpcli.cameras import CameraProfile, load_profile
from dpcli.cli.options import InputOptions
from dpcli.errors import InputError

_RAW_MIN_COUNTS, _RAW_MAX_COUNTS = 256, 16383


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

    def encoding(self, channels: int, bit_depth: int, raw_dp: bool = False) -> bool:
        """True when views of this kind are sRGB-encoded (module docstring's rule)."""
        if self.source.srgb is not None:
            return self.source.srgb
        if self.source.black_level is not None:
            return False
        if raw_dp:
            return True
        return not (bit_depth == 32 or (channels == 1 and bit_depth == 16))

    def domain(self, channels: int, srgb: bool) -> str:
        from dpcli.methods import item_domain

        return self.profile.domain if self.profile else item_domain(channels, srgb)


def looks_like_raw_counts(view: np.ndarray, bit_depth: int) -> bool:
    """A grey 16-bit view whose values sit above a black level, within 14-bit counts."""
    if bit_depth != 16 or view.shape[0] != 1:
        return False
    lo, hi = float(view.min()) * 65535, float(view.max()) * 65535
    return lo >= _RAW_MIN_COUNTS and hi <= _RAW_MAX_COUNTS + 0.5


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
