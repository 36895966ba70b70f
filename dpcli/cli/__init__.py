"""`dpdeblur` command line: a thin layer over the dpcli Python API (one module per command)."""
from __future__ import annotations

import sys

import typer
from rich.markup import escape

from dpcli import __version__
from dpcli.cli.app import app
from dpcli.cli.console import console_err
from dpcli.errors import DpError

# Command modules register on `app` when imported (order = order in --help).
from dpcli.cli import run as _run  # noqa: E402,F401
from dpcli.cli import zeroshot as _zeroshot  # noqa: E402,F401
from dpcli.cli import defocus_map as _defocus_map  # noqa: E402,F401
from dpcli.cli import cameras as _cameras  # noqa: E402,F401
from dpcli.cli import eval as _eval  # noqa: E402,F401
from dpcli.cli import synth as _synth  # noqa: E402,F401
from dpcli.cli import train as _train  # noqa: E402,F401
from dpcli.cli import models as _models  # noqa: E402,F401
from dpcli.cli import convert_lpips as _convert_lpips  # noqa: E402,F401


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"dpdeblur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Remove defocus blur from photographs with dual-pixel data or from single images."""


def _click_error_types(name: str = "ClickException") -> tuple[type[BaseException], ...]:
    # Recent Typer vendors click as typer._click; older ones use click itself: catch both.
    import importlib

    types: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            types.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


_CLICK_ERRORS = _click_error_types()
_NO_ARGS = _click_error_types("NoArgsIsHelpError")
_NO_SUCH_OPTION = _click_error_types("NoSuchOption")


def _verbose(argv: list[str]) -> bool:
    return any(a in ("-v", "--verbose") for a in argv)


def _error(message: str) -> None:
    console_err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)


def _warnings_as_lines() -> None:
    """Warnings (an input repaired: NaN replaced, alpha dropped) print as one line, no source location."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        console_err.print(f"[yellow]warning:[/yellow] {escape(' '.join(str(message).split()))}",
                          highlight=False, soft_wrap=True)

    warnings.showwarning = show


_CTRL_C: list[bool] = []


def _catch_ctrl_c() -> None:
    """Note a Ctrl-C (then raise KeyboardInterrupt as Python does); left alone where SIGINT is
    ignored (a background job) or handled by someone else."""
    import signal

    def on_sigint(signum, frame) -> None:  # noqa: ANN001
        _CTRL_C.append(True)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)


def _interrupted() -> None:
    console_err.print("interrupted: finished outputs are kept; the same command again continues where it "
                      "stopped", highlight=False, soft_wrap=True)


def _usage_message(exc: BaseException) -> str:
    """Click's message in one line; an unknown option gets a suggestion only when one is close, and
    the commands that have it when it belongs to others (``zeroshot --tile``: not ``--quiet``)."""
    import difflib

    name = getattr(exc, "option_name", None)
    if not isinstance(exc, _NO_SUCH_OPTION) or not name:
        return " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    here = [o for p in (ctx.command.params if ctx is not None else []) for o in (*p.opts, *p.secondary_opts)
            if o.startswith("--") and not getattr(p, "hidden", False)]
    text = f"no such option: {name}"
    close = difflib.get_close_matches(name, here, n=1, cutoff=0.8)
    if close:
        text += f"; did you mean {close[0]}?"
    if ctx is not None and ctx.parent is not None:
        group = ctx.parent.command
        owners = [cmd for cmd in getattr(group, "commands", {}) if cmd != ctx.info_name and any(
            name in (*p.opts, *p.secondary_opts) for p in group.commands[cmd].params)]
        if owners:
            text += f" ({', '.join(owners)} {'has' if len(owners) == 1 else 'have'} it; {ctx.info_name} does not)"
    return text


def main() -> None:
    """Console entry point: every failure is one line on stderr and an exit code, never a traceback
    (``-v`` adds the traceback of an unexpected error): 2 bad input or usage, 1 failure, 130 interrupted."""
    import traceback

    from dpcli.cli.console import describe_exception
    from dpcli.heap import retain_freed_memory

    retain_freed_memory()  # large conv buffers are reused instead of re-faulted (see its docstring)
    _warnings_as_lines()
    _catch_ctrl_c()
    try:
        # Without standalone mode click RETURNS the code of `raise typer.Exit(code)`: pass it on
        # (Typer turns Ctrl-C into a returned 130 too: the handler above noted it).
        code = app(standalone_mode=False, prog_name="dpdeblur")
        if code == 130 and _CTRL_C:
            _interrupted()
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except DpError as exc:
        _error(escape(exc.one_line()))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console_err.print("aborted", highlight=False)
        sys.exit(130)
    except KeyboardInterrupt:
        _interrupted()
        sys.exit(130)
    except _CLICK_ERRORS as exc:  # usage errors: one line, with where to look
        if isinstance(exc, _NO_ARGS):  # `dpdeblur` alone: the help is printed, but nothing was done
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        _error(escape(_usage_message(exc) + hint))
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug or an environment problem: still one line in user terms
        if _verbose(sys.argv[1:]):
            console_err.print(traceback.format_exc(), highlight=False, markup=False)
        _error(escape(describe_exception(exc)))
        sys.exit(1)
