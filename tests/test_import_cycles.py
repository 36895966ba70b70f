"""No import cycles between dpcli modules, counting every import statement (module level, inside
functions and under ``if TYPE_CHECKING:``: a type-only import still ties the two modules together
for the reader), read with ast, nothing imported."""
from __future__ import annotations

import ast
from pathlib import Path

import dpcli

ROOT = Path(dpcli.__file__).resolve().parent

def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in root.rglob("*.py"):
        parts = ["dpcli", *path.relative_to(root).with_suffix("").parts]
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the dpcli modules its import statements name (``from a import b``: ``a.b`` when
    that is a module, else ``a``)."""
    mods = _modules(root)
    graph = {}
    for name, (path, package) in mods.items():
        here = name if package else name.rpartition(".")[0]
        deps = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in mods else base)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_counts_function_level_and_type_only_imports(tmp_path) -> None:
    pkg = tmp_path / "dpcli"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "sub/__init__", "sub/c"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dpcli.b import X\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("import dpcli.a\n")
    graph = import_graph(pkg)
    assert graph["dpcli.a"] == {"dpcli.b"} and graph["dpcli.b"] == {"dpcli.sub.c"}
    assert cycles(graph) == [["dpcli.a", "dpcli.b", "dpcli.sub.c"]]


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "dpcli.engine" in graph and "dpcli.models.registry" in graph["dpcli.models.loading"]
    assert cycles(graph) == [], f"import cycles: {cycles(graph)}"


def test_methods_never_import_the_api() -> None:
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("dpcli.methods") or name == "dpcli.engine":
            assert "dpcli.api" not in deps and "dpcli.pipeline" not in deps, name
