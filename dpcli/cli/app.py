"""The Typer application object; command modules register themselves on it.

Commands are :class:`DpCommand`: their help shows values in words (PATH, N, TEXT), never Python
type names, and flags show no value at all; lists of network families in help texts are read from
the model registry when the help is shown (:func:`registry_words`), so no help names them by hand.
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Any, Union, get_args, get_origin

try:
    from types import UnionType
except ImportError:  # Python < 3.10
    UnionType = None  # type: ignore[assignment,misc]

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_TYPE_WORDS = {int: "INTEGER", float: "NUMBER", str: "TEXT", bool: "YES|NO"}


def _words(annotation: Any) -> str:
    """A parameter's annotation in user words: PATH, INTEGER, NUMBER, TEXT."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union or (UnionType is not None and origin is UnionType):  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return _words(inner[0]) if len(inner) == 1 else "VALUE"
    if origin in (list, tuple):
        words = [_words(a) for a in args if a is not Ellipsis]
        return " ".join(words) if origin is tuple else f"{words[0]}..."
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "PATH"
    return _TYPE_WORDS.get(annotation, "VALUE")


def user_metavar(param: Any) -> None:
    """Give a Typer parameter a metavar in words where it has none (flags: an empty one)."""
    if param.metavar is not None:
        return
    if isinstance(param, TyperOption) and (param.is_flag or param.count):
        param.metavar = ""
        return
    if isinstance(param, TyperArgument):
        words = _words(param.type_descriptor.annotation)
        param.metavar = str(param.name).upper()
        # the type column of an argument ignores its metavar: show the words there too
        param.display_type_rich = lambda ctx, _w=words: _w  # type: ignore[method-assign]
        return
    param.metavar = _words(param.type_descriptor.annotation)


# placeholders a help text may hold, filled from the registries when the help is shown
FAMILIES, TRAINABLE, STAGES = "{families}", "{trainable}", "{stages}"


def registry_words(text: str | None) -> str | None:
    """``text`` with :data:`FAMILIES` (the registered families that deblur), :data:`TRAINABLE`
    (those with training stages) and :data:`STAGES` (each trainable family's stages, its default
    marked) filled in. The registries are read only when a text holds a placeholder, so the help
    of other commands imports no network."""
    if not text or not any(p in text for p in (FAMILIES, TRAINABLE, STAGES)):
        return text
    from dpcli.models.registry import deblur_families
    from dpcli.train.stages import stages_of, trainable_families

    def stages(family: str) -> str:
        return " | ".join(f"{n} (default)" if s.default else n for n, s in stages_of(family).items())

    return (text.replace(FAMILIES, " | ".join(deblur_families()))
            .replace(TRAINABLE, " | ".join(trainable_families()))
            .replace(STAGES, "; ".join(f"{f}: {stages(f)}" for f in trainable_families())))


class DpCommand(TyperCommand):
    """A Typer command whose help names values in words (see :func:`user_metavar`) and reads its
    lists of families from the registries (see :func:`registry_words`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # with --help, which click adds here
        for param in params:
            user_metavar(param)
            # a repeatable option whose metavar names several values (--pair LEFT RIGHT) takes them all
            # each time (Typer has no list of tuples): the command gets a list of tuples of str
            if isinstance(param, TyperOption) and param.multiple and param.metavar and " " in param.metavar:
                param.nargs = len(param.metavar.split())
        return params

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.help = registry_words(self.help)
        for param in self.get_params(ctx):
            param.help = registry_words(getattr(param, "help", None))
        return super().format_help(ctx, formatter)


class DpGroup(TyperGroup):
    """The root ``dpdeblur`` group: its own options (--version, --help) in words too, as flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            user_metavar(param)
        return params


class DpTyper(typer.Typer):
    """Typer app whose commands default to :class:`DpCommand`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("cls", DpCommand)
        return super().command(*args, **kwargs)


app = DpTyper(
    name="dpdeblur",
    help="Remove defocus blur from photographs: dual-pixel pairs (networks, zero-shot MPI, classical) "
    "and single images (networks); `dpdeblur models` lists the networks.",
    cls=DpGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
