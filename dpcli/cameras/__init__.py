"""Camera profiles: small TOML files (like lensfun's) that say how a camera's DP files are read.

A profile holds: the domain (``phone``: linear raw planes, ``dslr``: colour sRGB views), how the
files are stored (raw planes with black/white level, or ordinary images), linear vs sRGB, which
file holds our left view when known, the focus side (the orientation prior), and where the
user's own calibration lives (white-sheet pair for vignetting, measured kernel folder).

Shipped profiles live in ``dpcli/cameras/profiles/``; users add theirs as ``NAME.toml`` in
``$DPDEBLUR_CAMERAS`` or ``~/.config/dpdeblur/cameras/`` (``$XDG_CONFIG_HOME`` respected), which
take precedence over shipped ones of the same name, or pass a file: ``--camera my_cam.toml``.
Relative calibration paths are relative to the profile file.

>>> from dpcli.cameras import load_profile
>>> load_profile("pixel4").black_level
1024.0
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dpcli.domains import DOMAINS
from dpcli.errors import InputError

__all__ = ["CameraProfile", "load_profile", "list_profiles", "user_profile_dir", "DOMAINS"]

_LEFT_FILE = ("left", "right", "unknown")
_SHIPPED = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class CameraProfile:
    """One camera profile (see the module docstring for the file format)."""

    name: str
    description: str = ""
    domain: str = "dslr"
    kind: str = "image"  # raw-planes | image
    space: str = "srgb"  # linear | srgb
    black_level: float | None = None
    white_level: float | None = None
    left_file: str = "unknown"  # which file holds OUR left view: left | right | unknown
    focus: str = "front"  # front (content behind the focal plane) | back
    white_sheet: tuple[Path, Path] | None = None
    kernels: Path | None = None
    aliases: tuple[str, ...] = ()
    path: Path | None = None
    shipped: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def srgb(self) -> bool:
        return self.space == "srgb"

    @property
    def swap_hint(self) -> bool | None:
        """True when the file named left holds our right view; None when unknown."""
        return None if self.left_file == "unknown" else self.left_file == "right"


def user_profile_dir() -> Path:
    env = os.environ.get("DPDEBLUR_CAMERAS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dpdeblur" / "cameras"


def _parse(path: Path, shipped: bool) -> CameraProfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the camera profile ({exc.strerror or exc})", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not a valid TOML camera profile ({exc})", path) from None
    inp, dp, cal = data.get("input", {}), data.get("dual_pixel", {}), data.get("calibration", {})
    name = str(data.get("name") or path.stem)

    def bad(what: str) -> InputError:
        return InputError(f"camera profile {name}: {what}", path)

    def choice(section: dict, key: str, label: str, allowed: tuple[str, ...], default: str) -> str:
        value = section.get(key, default)
        if value not in allowed:
            raise bad(f"{label} must be one of {', '.join(allowed)} (got {value!r})")
        return value

    domain = choice(data, "domain", "domain", tuple(DOMAINS), "dslr")
    kind = choice(inp, "kind", "input.kind", ("raw-planes", "image"), "image")
    space = choice(inp, "space", "input.space", ("linear", "srgb"), "linear" if kind == "raw-planes" else "srgb")
    left_file = choice(dp, "left_file", "dual_pixel.left_file", _LEFT_FILE, "unknown")
    focus = choice(dp, "focus", "dual_pixel.focus", ("front", "back"), "front")
    black = inp.get("black_level")
    white = inp.get("white_level")
    if kind == "raw-planes" and black is None:
        raise bad("input.black_level is needed for raw planes")
    if black is not None and (not isinstance(black, (int, float)) or black < 0):
        raise bad(f"input.black_level must be a number >= 0 (got {black!r})")
    if white is not None and (not isinstance(white, (int, float)) or white <= 0):
        raise bad(f"input.white_level must be a positive number (got {white!r})")

    def where(value) -> Path | None:
        if not value:
            return None
        p = Path(os.path.expanduser(str(value)))
        return p if p.is_absolute() else path.parent / p

    sheets = (where(cal.get("white_sheet_left")), where(cal.get("white_sheet_right")))
    if (sheets[0] is None) != (sheets[1] is None):
        raise bad("calibration.white_sheet_left and white_sheet_right go together")
    return CameraProfile(
        name=name, description=str(data.get("description", "")), domain=domain, kind=kind, space=space,
        black_level=None if black is None else float(black), white_level=None if white is None else float(white),
        left_file=left_file, focus=focus, white_sheet=sheets if sheets[0] is not None else None,
        kernels=where(cal.get("kernels")), aliases=tuple(data.get("aliases", ())), path=path, shipped=shipped)


def list_profiles() -> list[CameraProfile]:
    """Every profile found: the user's (first) then the shipped ones; a user profile hides a
    shipped one of the same name. Unreadable user files raise InputError naming them."""
    found: dict[str, CameraProfile] = {}
    for folder, shipped in ((user_profile_dir(), False), (_SHIPPED, True)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            profile = _parse(path, shipped)
            found.setdefault(profile.name, profile)
    return list(found.values())


def load_profile(name_or_path: str | Path) -> CameraProfile:
    """A profile by name, alias (case-insensitive) or file path.

    Raises:
        InputError: unknown name (the message lists the known ones) or a bad file.
    """
    text = str(name_or_path)
    path = Path(os.path.expanduser(text))
    if path.suffix.lower() == ".toml" or path.is_file():
        if not path.is_file():
            raise InputError("no such camera profile file", path)
        return _parse(path, shipped=False)
    key = text.lower()
    profiles = list_profiles()
    for profile in profiles:
        if key == profile.name.lower() or key in (a.lower() for a in profile.aliases):
            return profile
    names = ", ".join(p.name for p in profiles)
    raise InputError(f"{text}: no such camera profile; known: {names} (`dpdeblur cameras` lists them; add "
                     f"your own as {user_profile_dir()}/NAME.toml)")
