"""`dpdeblur models`: the methods `run --model` takes (dpcli.methods), the architectures and the
registered weights (dpcli.models.registry)."""
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
    """List the methods, networks and weights (names as --model and --weights take them).

    Examples:

        dpdeblur models

        dpdeblur models 'bambnet*'

        dpdeblur models --pretrained --json

        dpdeblur models 'restormer*'          # where its weights come from, and their licence
    """
    from dpcli.models.registry import (WEIGHTS_HINT, describe, list_families, list_models, list_pretrained,
                                       manifest_path, model_info)

    import fnmatch

    methods = [] if weights_only else [m.describe() for m in _methods() if fnmatch.fnmatch(m.name, pattern)]
    archs = [] if weights_only else [model_info(n) for n in list_models(pattern)]
    families = [] if weights_only else [_family_row(f) for f in list_families()
                                        if fnmatch.fnmatch(f.name, pattern) or any(a.family == f.name for a in archs)]

    weights = [c for c in list_pretrained() if fnmatch.fnmatch(c.name, pattern) or fnmatch.fnmatch(c.arch, pattern)]
    if json_out:
        print(json.dumps({
            "methods": methods,
            "architectures": [{"name": i.name, "family": i.family, "task": i.task, "input": i.recipe,
                               "official_input": i.official_recipe, "paper": i.paper,
                               "doc": (i.fn.__doc__ or "").strip()} for i in archs],
            "families": families,
            "weights": [describe(c) for c in weights],
            "manifest": str(manifest_path()),
        }, indent=2))
        return
    if methods:
        print_table("methods (dpdeblur run --model NAME; with no --model, the default for the data; "
                    "phone = linear grey raw planes, dslr = colour sRGB views)",
                    ["method", "input", "domains", "gain on real photos (dB)", "default for", "what"],
                    [_method_row(m) for m in methods], target=console)
    if families:
        short = {"deblur_pair": "pairs", "deblur_single": "single", "coc": "COC"}
        rows = [[f["name"], f["paper"], ", ".join(f"{short.get(t, t)}: {a}" for t, a in f["defaults"].items()),
                 "your weights" if f["weights"] == "yours" else "shipped or yours",
                 escape(f["weights_source"]), escape(f["licence"])] for f in families]
        print_table("network families (dpdeblur run --weights FILE finds the family from the file; "
                    "dpdeblur never ships the authors' weights)",
                    ["family", "paper", "--model FAMILY means", "weights", "authors publish at", "licence"],
                    rows, target=console)
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


def _family_row(f) -> dict:
    return {"name": f.name, "paper": f.paper, "defaults": dict(f.defaults),
            "weights": "shipped" if f.ships_weights else "yours", "weights_source": f.weights_source,
            "licence": f.licence}


def _methods() -> list:
    from dpcli.methods import list_methods

    return list(list_methods())


def _method_row(m: dict) -> list[str]:
    """Domains: phone = linear grey raw planes (Pixel), dslr = colour sRGB views (Canon)."""
    from dpcli.methods import default_method

    gains = ", ".join(f"{d} {g:+.2f}" for d, g in m["measured_gain_db"].items())
    defaults = [d for d in ("phone", "dslr")
                if (dm := default_method(d, m["needs_pair"])) is not None and dm.name == m["name"]]
    return [m["name"], "DP pair" if m["needs_pair"] else "single image", ", ".join(m["domains"]),
            gains or "-", ", ".join(defaults) or "-", escape(m["summary"])]
