"""The fusion-method registry: names -> ``fn(left, right, stack, cfg)`` (see :mod:`dpcli.zeroshot.fusion`).

Kept apart from the methods themselves so that :class:`dpcli.zeroshot.config.ZeroShotConfig` can
check a name without importing the fusion code (which imports the config). :data:`PLUGIN_MODULES`
(the built-in methods, the learned fusion) are imported on the first look-up.
"""
from __future__ import annotations

import importlib
from typing import Callable

from dpcli.errors import InputError

__all__ = ["register_fusion", "fusion_methods", "get_fusion", "PLUGIN_MODULES"]

_METHODS: dict[str, Callable] = {}
PLUGIN_MODULES: tuple[str, ...] = ("dpcli.zeroshot.fusion", "dpcli.zeroshot.fusion_net")
_plugins_loaded = False


def register_fusion(name: str, fn: Callable | None = None):
    """Register ``fn`` as fusion method ``name`` (usable as a decorator: ``@register_fusion("x")``)."""
    def add(f: Callable) -> Callable:
        _METHODS[name] = f
        return f
    return add(fn) if fn is not None else add


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # the module exists but something it imports does not
                raise


def fusion_methods() -> list[str]:
    """Names of the registered fusion methods."""
    _load_plugins()
    return sorted(_METHODS)


def get_fusion(name: str) -> Callable:
    """The fusion method registered as ``name``; InputError naming the valid ones."""
    _load_plugins()
    if name not in _METHODS:
        raise InputError(f"--fusion must be one of {', '.join(sorted(_METHODS))} (got {name!r})")
    return _METHODS[name]
