"""Issue 25 item 4: cli/ is split by job, and a command module imports library entry points and the
shared CLI modules, never another command module (shared pieces live below the commands)."""
from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).parents[2] / "dpcli" / "cli"
COMMANDS = {"run", "zeroshot", "defocus_map", "cameras", "eval", "synth", "train", "models", "convert_lpips"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "dpcli.cli":
                found.update(f"dpcli.cli.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_command_modules_do_not_import_each_other():
    for name in sorted(COMMANDS):
        others = {f"dpcli.cli.{c}" for c in COMMANDS - {name}}
        assert not _imports(CLI / f"{name}.py") & others, name


def test_no_module_mixes_every_job():
    for path in CLI.glob("*.py"):
        assert len(path.read_text().splitlines()) < 450, path.name
