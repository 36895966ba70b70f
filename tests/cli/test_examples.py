"""Issue 17 items 4 and 6: every `dpdeblur ...` example in the README and in each command's --help
uses options that exist, with values of the right type (parsed by the real parser, not run)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from dpcli.cli import app

ROOT = Path(__file__).parents[2]


def _command_lines(text: str) -> list[str]:
    """`dpdeblur ...` invocations in a text: continuation lines joined, comments, pipes and
    redirections cut, `&&` chains split."""
    text = re.sub(r"\\\s*\n\s*", " ", text)
    found = []
    for line in text.splitlines():
        for part in line.split("&&"):
            part = part.strip().lstrip("$ ").strip()
            if part.startswith("torchrun "):
                part = part[part.index("-m dpcli") + len("-m dpcli"):].strip() if "-m dpcli" in part else ""
                part = f"dpdeblur {part}" if part else ""
            if not part.startswith("dpdeblur "):
                continue
            part = re.split(r"\s#|[|<>]", part)[0].strip()
            found.append(part)
    return found


def _readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    return [c for b in blocks for c in _command_lines(b)]


def _help_examples() -> list[str]:
    group = typer.main.get_command(app)
    out = []
    for name, command in group.commands.items():
        text = (command.epilog or "") + "\n" + (command.help or "")
        out += [c for c in _command_lines(text) if c.split()[1] == name]
    return out


def _parse(line: str) -> None:
    name, *rest = shlex.split(line)[1:]
    command = typer.main.get_command(app).commands.get(name)
    assert command is not None, f"no command {name!r}"
    command.make_context(name, list(rest))  # raises a usage error on a bad option or value


def test_the_readme_and_the_help_have_examples_for_every_command():
    commands = {c.split()[1] for c in _readme_examples()}
    helps = {c.split()[1] for c in _help_examples()}
    for name in typer.main.get_command(app).commands:
        assert name in commands, f"README has no example of dpdeblur {name}"
        assert name in helps, f"dpdeblur {name} --help has no example"


@pytest.mark.parametrize("line", _readme_examples() + _help_examples())
def test_every_example_parses(line):
    _parse(line)


def test_a_retired_flag_would_be_caught():
    from dpcli.cli import _CLICK_ERRORS

    with pytest.raises(_CLICK_ERRORS):
        _parse("dpdeblur synth data/synth --count 8")  # the old positional output folder
    with pytest.raises(_CLICK_ERRORS):
        _parse("dpdeblur train bambnet --data synth --out runs/x")  # the old --out
