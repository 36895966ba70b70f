"""`dpdeblur run` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("run")
def run_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur run: not built yet")
