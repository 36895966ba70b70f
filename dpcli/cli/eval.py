"""`dpdeblur eval` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("eval")
def eval_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur eval: not built yet")
