"""`dpdeblur cameras`, and how `--camera` / `--linear` / `--srgb` resolve for every DP command.

A camera profile's values become the defaults of the flags not given (:func:`resolve_input`); the
per-item decisions (encoding, domain, view order) are made by :mod:`dpcli.pipeline`, which
:meth:`ResolvedInput.pipeline_source` feeds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import typer

from dpcli.cameras import CameraProfile, list_profiles, load_profile, user_profile_dir
from dpcli.cli.app import app
from dpcli.cli.options import InputOptions, OutputOptions, bundle, with_bundles
from dpcli.domains import DOMAINS


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
    profile = load_profile(source.camera)
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


_EPILOG = """
Examples:

  dpdeblur cameras                      # the profiles known here (shipped and yours)

  dpdeblur cameras pixel4               # one profile in full

  dpdeblur run pixel4/ -o out/ --camera pixel4     # raw planes: black level etc. from the profile

Add your own: copy a shipped profile (path shown by `dpdeblur cameras NAME`) to
~/.config/dpdeblur/cameras/NAME.toml (or $DPDEBLUR_CAMERAS) and fill in its calibration paths.
"""


@app.command("cameras", epilog=_EPILOG)
@with_bundles
def cameras_command(
    name: str = typer.Argument(None, help="Show this profile in full (name, alias or .toml file)."),
    out: OutputOptions = bundle(omit=("folder", "bit_depth", "format", "quality", "overwrite", "quiet", "verbose")),
) -> None:
    """List camera profiles: raw levels, encoding, view order, focus side, calibration files."""
    import json

    from dpcli.cli.common import console, print_table

    profiles = [load_profile(name)] if name else list_profiles()
    rows = [_profile_dict(p) for p in profiles]
    if out.json:
        print(json.dumps(rows, indent=2))
        return
    if name:
        for key, value in rows[0].items():
            console.print(f"[bold]{key}[/bold]: {value}", highlight=False, soft_wrap=True)
        return
    print_table("camera profiles", ["name", "domain", "files", "encoding", "left view when a pair cannot tell", "focus",
                                    "from"],
                [[r["name"], r["domain"], r["files"], r["encoding"], r["left view"], r["focus"], r["from"]]
                 for r in rows])
    console.print(f"domains: {'; '.join(f'{k} = {v}' for k, v in DOMAINS.items())}. Your profiles: "
                  f"{user_profile_dir()}/NAME.toml", highlight=False, soft_wrap=True)


def _profile_dict(p: CameraProfile) -> dict:
    files = (f"raw planes, black level {p.black_level:g}, white level {p.white_level or 16383:g}"
             if p.kind == "raw-planes" else "image files")
    left = {"left": "file named left", "right": "file named right", "unknown": "as given"}[p.left_file]
    return {"name": p.name, "description": p.description, "aliases": ", ".join(p.aliases), "domain": p.domain,
            "files": files, "encoding": p.space, "left view": left, "focus": p.focus,
            "white sheets": " ".join(str(s) for s in p.white_sheet) if p.white_sheet else "(none)",
            "kernels": str(p.kernels) if p.kernels else "(none)",
            "from": "shipped" if p.shipped else "yours", "file": str(p.path)}
