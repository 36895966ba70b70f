"""`dpdeblur zeroshot` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("zeroshot")
def zeroshot_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur zeroshot: not built yet")
