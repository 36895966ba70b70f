"""The two consoles of every command (results on stdout, messages on stderr) and how an unexpected
exception is worded for a user: its message, never its class name."""
from __future__ import annotations

from rich.console import Console

from dpcli.errors import DpError

console = Console()
console_err = Console(stderr=True)


def describe_exception(exc: BaseException) -> str:
    """An unexpected exception in user terms: its message, never its class name or internals."""
    if isinstance(exc, DpError):
        return exc.one_line()
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --tile, or fewer --threads)"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{exc.strerror or 'cannot read or write a file'}"
    text = " ".join(str(exc).split())
    if "out of memory" in text.lower():
        return "out of memory (try a smaller --tile)"
    if len(text) > 160:
        text = text[:157] + "..."
    return f"unexpected failure ({text}); rerun with -v for details" if text else \
        "unexpected failure; rerun with -v for details"
