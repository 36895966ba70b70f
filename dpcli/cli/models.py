"""`dpdeblur models` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("models")
def models_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur models: not built yet")
