"""`dpdeblur models`: the architectures and the registered weights (from dpcli.models.registry)."""
from __future__ import annotations

import json

import typer
from rich.table import Table

from dpcli.cli.app import app
from dpcli.cli.common import JSON_OPTION, console


@app.command("models")
def models_command(
    pattern: str = typer.Argument("*", help="Only names matching this pattern (fnmatch), e.g. 'bambnet*'."),
    weights_only: bool = typer.Option(False, "--pretrained", help="List only registered weights (arch.tag)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List networks and their weights.

    Examples:
      dpdeblur models
      dpdeblur models 'bambnet*'
      dpdeblur models --pretrained --json
    """
    from dpcli.models.registry import WEIGHTS_HINT, describe, list_models, list_pretrained, manifest_path, model_info

    archs = [] if weights_only else [model_info(n) for n in list_models(pattern)]
    import fnmatch

    weights = [c for c in list_pretrained() if fnmatch.fnmatch(c.name, pattern) or fnmatch.fnmatch(c.arch, pattern)]
    if json_out:
        print(json.dumps({
            "architectures": [{"name": i.name, "family": i.family, "task": i.task, "input": i.recipe,
                               "official_input": i.official_recipe, "paper": i.paper,
                               "doc": (i.fn.__doc__ or "").strip()} for i in archs],
            "weights": [describe(c) for c in weights],
            "manifest": str(manifest_path()),
        }, indent=2))
        return
    if archs:
        table = Table(title="architectures")
        for col in ("name", "task", "input", "weights", "description"):
            table.add_column(col)
        have = {c.arch for c in list_pretrained()}
        for i in archs:
            table.add_row(i.name, i.task, i.recipe, "yes" if i.name in have else "-", (i.fn.__doc__ or "").strip())
        console.print(table)
    if weights:
        table = Table(title=f"weights ({manifest_path()})")
        for col in ("name", "colour", "input", "training data", "metrics", "sha256"):
            table.add_column(col)
        for c in weights:
            metrics = ", ".join(f"{k} {v:g}" for k, v in c.metrics.items())
            table.add_row(c.name, c.colour_order, c.input_recipe, c.training_data, metrics, c.sha256[:12])
        console.print(table)
    else:
        console.print(f"No trained weights registered ({manifest_path()}). To get some, {WEIGHTS_HINT}.",
                      highlight=False, soft_wrap=True)
