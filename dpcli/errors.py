"""Errors that the CLI turns into one clear line and an exit code (no traceback)."""
from __future__ import annotations

from pathlib import Path


class DpError(Exception):
    """Base class of every error dpdeblur reports to a user.

    ``exit_code`` follows the CLI contract: 2 for bad input or usage, 1 for a run in which
    some files failed.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.path}: {self.message}" if self.path is not None else self.message


class InputError(DpError):
    """A file or folder given by the user is missing, unreadable, of the wrong type or size."""


class OutputError(DpError):
    """An output cannot be written (exists without --overwrite, would replace an input, no permission)."""


class ModelError(DpError):
    """Weights or a model name that cannot be used (unknown name, wrong architecture, bad sha256)."""


class DiskFullError(OutputError):
    """No space left on the output's device: a folder run stops here (every further item would fail
    the same way). ``needed``: the bytes this write wanted."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None, needed: int = 0) -> None:
        self.needed = needed
        super().__init__(message, path)
