"""Helpers for the CLI tests: run `dpdeblur` in-process through its console entry point."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def dpdeblur(capsys, monkeypatch):
    """dpdeblur(*args) -> CliRun: the real entry point (dpcli.cli.main), exit code and both streams."""
    from dpcli.cli import main

    def run(*args: object, columns: int = 100) -> CliRun:
        monkeypatch.setattr(sys, "argv", ["dpdeblur", *map(str, args)])
        monkeypatch.setenv("COLUMNS", str(columns))
        from dpcli.cli import console as consoles

        for console in (consoles.console, consoles.console_err):  # consoles read COLUMNS when made
            monkeypatch.setattr(console, "_width", columns)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run
