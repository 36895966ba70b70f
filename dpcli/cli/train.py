"""`dpdeblur train` (being built; the owner of this module replaces this file)."""
from __future__ import annotations

from dpcli.cli.app import app


@app.command("train")
def train_command() -> None:
    """Not built yet."""
    raise SystemExit("dpdeblur train: not built yet")
