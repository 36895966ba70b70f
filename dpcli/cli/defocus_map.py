"""`dpdeblur defocus-map` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("defocus-map")
def defocus_map_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur defocus-map: not built yet")
