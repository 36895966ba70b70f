"""`dpdeblur models`: the architectures and the registered weights (from dpcli.models.registry)."""
from __future__ import annotations

import json

import typer
from rich.markup import escape

from dpcli.cli.app import app
from dpcli.cli.common import console, print_table


@app.command("models")
def models_command(
    pattern: str = typer.Argument("*", help="Only names matching this pattern (fnmatch), e.g. 'bambnet*'."),
    weights_only: bool = typer.Option(False, "--pretrained", help="List only registered weights (arch.tag)."),
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout (for scripts)."),
) -> None:
    """List networks and their weights (names as --model and --weights take them).

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
        have = {c.arch for c in list_pretrained()}
        rows = [[i.name, i.task, i.recipe, "yes" if i.name in have else "-", escape((i.fn.__doc__ or "").strip())]
                for i in archs]
        print_table("architectures", ["name", "task", "input views", "weights", "description"], rows,
                    target=console)
    if weights:
        rows = []
        for c in weights:
            metrics = ", ".join(f"{k} {v:g}" for k, v in c.metrics.items())
            rows.append([c.name, c.colour_order, c.input_recipe, escape(c.training_data), escape(metrics),
                         c.sha256[:12]])
        print_table(f"weights ({manifest_path()})", ["name", "colour", "input views", "training data",
                                                     "measured", "sha256"], rows, target=console)
    else:
        console.print(f"No trained weights registered ({manifest_path()}). To get some, {WEIGHTS_HINT}.",
                      highlight=False, soft_wrap=True)
