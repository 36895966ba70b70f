"""`dpdeblur cameras`: the camera profiles known here (how `--camera` resolves: dpcli.cli.inputs)."""
from __future__ import annotations

import typer

from dpcli.cameras import CameraProfile, list_profiles, load_profile, user_profile_dir
from dpcli.cli.app import app
from dpcli.cli.options import OutputOptions, bundle, with_bundles
from dpcli.domains import DOMAINS

_EPILOG = """
Examples:

  dpdeblur cameras            # the profiles known here (shipped and yours)

  dpdeblur cameras pixel4     # one profile in full

  # raw planes: black level etc. from the profile
  dpdeblur run pixel4/ -o out/ --camera pixel4

Add your own: copy a shipped profile (path shown by `dpdeblur cameras
NAME`) to ~/.config/dpdeblur/cameras/NAME.toml (or $DPDEBLUR_CAMERAS)
and fill in its calibration paths.
"""


@app.command("cameras", epilog=_EPILOG)
@with_bundles
def cameras_command(
    name: str = typer.Argument(None, help="Show this profile in full (name, alias or .toml file)."),
    out: OutputOptions = bundle(omit=("folder", "bit_depth", "format", "quality", "overwrite", "quiet", "verbose",
                                      "report")),
) -> None:
    """List camera profiles: raw levels, encoding, view order, focus side, calibration files."""
    import json

    from dpcli.cli.console import console
    from dpcli.cli.tables import print_table

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
                 for r in rows], target=console)
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
