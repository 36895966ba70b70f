"""`dpdeblur synth` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("synth")
def synth_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur synth: not built yet")
