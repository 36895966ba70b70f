"""`dpdeblur models`: the methods `run --method` takes (dpcli.methods), the architectures and the
registered weights (dpcli.models.registry), one short line each; `dpdeblur models NAME` in full."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from dpcli.cli.app import app
from dpcli.cli.console import console
from dpcli.cli.tables import print_table


@app.command("models")
def models_command(
    pattern: str = typer.Argument("*", help="Only names matching this pattern (fnmatch), e.g. 'bambnet*'; "
                                  "one exact name shows it in full."),
    weights_only: bool = typer.Option(False, "--pretrained", help="List only the shipped weights "
                                      "(ARCHITECTURE.TAG names)."),
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout (for scripts)."),
) -> None:
    """List the methods, networks and weights (names as --method and --weights take them).

    Examples:

        dpdeblur models

        dpdeblur models 'bambnet*'

        dpdeblur models zeroshot          # one name in full

        dpdeblur models --pretrained --json

        dpdeblur models 'restormer*'   # where its weights come from, licence
    """
    from dpcli.models.registry import (describe, list_families, list_models, list_pretrained, manifest_path,
                                       model_info, weights_hint)

    import fnmatch

    methods = [] if weights_only else [m.describe() for m in _methods() if fnmatch.fnmatch(m.name, pattern)]
    archs = [] if weights_only else [model_info(n) for n in list_models(pattern)]
    families = [] if weights_only else [_family_row(f) for f in list_families()
                                        if fnmatch.fnmatch(f.name, pattern) or any(a.family == f.name for a in archs)]

    weights = [c for c in list_pretrained() if fnmatch.fnmatch(c.name, pattern) or fnmatch.fnmatch(c.arch, pattern)]
    same = _same_weights(list_pretrained())
    if json_out:
        print(json.dumps({
            "methods": methods,
            "architectures": [{"name": i.name, "family": i.family, "task": i.task, "input": i.recipe,
                               "official_input": i.official_recipe, "paper": i.paper,
                               "doc": (i.fn.__doc__ or "").strip()} for i in archs],
            "families": families,
            "weights": [describe(c) | {"same_weights_as": same.get(c.name, [])} for c in weights],
            "manifest": str(manifest_path()),
        }, indent=2))
        return
    exact = ([("method", m) for m in methods if m["name"] == pattern]
             + [("weights", describe(c) | {"same weights as": ", ".join(same.get(c.name, [])) or "-"})
                for c in weights if c.name == pattern]
             + [("architecture", {"name": i.name, "task": i.task, "input views": i.recipe, "paper": i.paper,
                                  "description": " ".join((i.fn.__doc__ or "").split())})
                for i in archs if i.name == pattern])
    if exact:
        for kind, info in exact:
            console.print(f"[bold]{escape(pattern)}[/bold] ({kind})", highlight=False)
            for key, value in info.items():
                if key != "name" and value not in ("", None, {}, []):
                    console.print(f"  {escape(key.replace('_', ' '))}: {escape(_words(value))}", highlight=False,
                                  soft_wrap=False)
        return
    if methods:
        print_table("methods (dpdeblur run --method NAME; with none, the default for the data); gain on real "
                    "photos in dB", ["method", "input", "phone dB", "dslr dB", "default"],
                    [_method_row(m) for m in methods], target=console, justify=["left", "left", "right", "right",
                                                                               "left"])
    if families:
        # the repository only here (its file names: --json)
        ours = {"yours": "", "shipped": " (+ ours)"}
        rows = [[f["name"] + (ours[f["weights"]] if f["weights_source"] else " (ours)"),
                 escape(f["weights_source"].split(" (")[0]) or "-", escape(f["licence"])] for f in families]
        print_table("network families: your weights (run --weights FILE finds the family from the file; "
                    "dpdeblur never ships the authors' weights)", ["family", "the authors publish at", "licence"],
                    rows, target=console)
    if archs:
        have = {c.arch for c in list_pretrained()}
        # the tiny unit-test configurations only when asked for by name (and in --json)
        shown = [i for i in archs if pattern != "*" or not i.name.endswith("_test")]
        rows = [[i.name, i.task, i.recipe, "yes" if i.name in have else "-"] for i in shown]
        print_table("architectures", ["name", "task", "input", "weights"], rows, target=console)
    if weights:
        # one row per name, each with the domain its recipe is for (one file may carry two names, a
        # recipe per domain: said once under the table)
        rows = [[c.name, c.domain or "-", c.input_recipe] for c in weights]  # sha256: `models NAME`, --json
        groups = {tuple(sorted([c.name, *same.get(c.name, [])])) for c in weights if same.get(c.name)}
        print_table("weights", ["name", "for", "input"], rows, target=console)
        if groups:  # the architecture once per group: name = .tag = .tag
            said = "; ".join(" = ".join([g[0], *(n[n.index("."):] for n in g[1:])]) for g in sorted(groups))
            console.print(f"the same weights, a recipe per domain: {said}", highlight=False)
        console.print(f"phone = linear grey raw planes, dslr = colour sRGB views. `dpdeblur models NAME` shows "
                      f"one in full (training data, scores). Manifest: {manifest_path()}", highlight=False)
    else:
        console.print(f"No trained weights registered ({manifest_path()}). To get some, {weights_hint()}.",
                      highlight=False, soft_wrap=True)


def _words(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _tensor_digest(path: Path) -> str | None:
    """sha256 of a safetensors file's tensors (names, shapes, data), not its free-form metadata: two
    files with the same digest hold the same weights."""
    import hashlib
    import struct

    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
            header.pop("__metadata__", None)
            digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except (OSError, ValueError, struct.error):
        return None
    return digest.hexdigest()


def _same_weights(entries: list) -> dict[str, list[str]]:
    """name -> the other names whose file holds the same tensors (byte for byte)."""
    from dpcli.models.registry import manifest_path

    groups: dict[str, list[str]] = {}
    for c in entries:
        path = Path(c.file) if Path(c.file).is_absolute() else manifest_path().parent / c.file
        key = _tensor_digest(path) if path.suffix == ".safetensors" else None
        groups.setdefault(key or c.sha256, []).append(c.name)
    return {n: [o for o in names if o != n] for names in groups.values() for n in names if len(names) > 1}


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

    gains = [f"{m['measured_gain_db'][d]:+.2f}" if d in m["measured_gain_db"] else "-" for d in ("phone", "dslr")]
    defaults = [d for d in ("phone", "dslr")
                if (dm := default_method(d, m["needs_pair"])) is not None and dm.name == m["name"]]
    return [m["name"], "pair" if m["needs_pair"] else "single", *gains, ", ".join(defaults) or "-"]
