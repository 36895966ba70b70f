"""The command-line shell: every command is listed, has --help with an example, and --version works."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dpcli import __version__
from dpcli.cli import app

COMMANDS = ["run", "zeroshot", "defocus-map", "eval", "synth", "train", "models", "convert-lpips"]
runner = CliRunner()


def test_root_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_has_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "dpdeblur " + command in result.output.replace("\n", " ") or "example" in result.output.lower()
    assert "example" in result.output.lower()


def test_version_through_the_console_script_module() -> None:
    out = subprocess.run([sys.executable, "-m", "dpcli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"dpdeblur {__version__}"


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "dpcli", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
