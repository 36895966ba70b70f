"""The Typer application object; command modules register themselves on it."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="dpdeblur",
    help="Remove defocus blur from photographs: dual-pixel pairs (BaMBNet, zero-shot MPI, classical) "
    "and single images (DefocusGAN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
