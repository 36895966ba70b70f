"""Layout rules read from the source with ast (nothing imported): no function in dpcli is over
MAX_LINES lines, counted from its ``def`` to the end of its body (docstring included, decorators
not). A long function reads well as a list of named stages: split it into them."""
from __future__ import annotations

import ast
from pathlib import Path

import dpcli

ROOT = Path(dpcli.__file__).resolve().parent
MAX_LINES = 100


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method in ``source`` longer than ``limit``."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > limit:
                    found.append((name, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_counter_finds_a_long_function_and_a_long_method() -> None:
    def body(indent: int) -> str:
        return "\n".join(" " * indent + f"x{i} = {i}" for i in range(5))

    source = f"@decorator\ndef f():\n{body(4)}\n\nclass A:\n    def m(self):\n        def inner():\n{body(12)}\n"
    assert long_functions(source, limit=5) == [("f", 6), ("A.m", 7), ("A.m.inner", 6)]
    assert long_functions(source, limit=7) == []


def test_no_function_over_the_limit() -> None:
    too_long = [f"{path.relative_to(ROOT.parent)}:{name} ({lines} lines)"
                for path in sorted(ROOT.rglob("*.py"))
                for name, lines in long_functions(path.read_text(encoding="utf-8"))]
    assert too_long == [], f"functions over {MAX_LINES} lines (split them into named stages): {too_long}"
