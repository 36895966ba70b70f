"""The method registry's look-ups: by name, every method, and the best measured for a domain.

:func:`get_method` builds a method by name (``arch.tag`` names of shipped weights are resolved
through :mod:`dpcli.methods.network`); :func:`list_methods` lists every one; :func:`default_method`
picks the best measured method for a domain from the data (``measured`` gains), so better
weights take over without code changes.
"""
from __future__ import annotations

import math
from typing import Any

import dpcli.methods.builtin  # noqa: F401  (registers the built-in methods)
import dpcli.methods.composite  # noqa: F401  (registers the composite methods)
from dpcli.errors import ModelError
from dpcli.methods.base import Method, UnknownMethod, registered_factories
from dpcli.methods.builtin import broad_figure, broad_trust
from dpcli.methods.network import network_method, shipped_network_names
from dpcli.methods.tta import with_tta  # tta=True|False|None (the measured default): networks only

__all__ = ["get_method", "list_methods", "method_names", "default_method"]


def method_names() -> list[str]:
    """Every name ``--method`` accepts without --weights: built-in methods, then shipped weights."""
    return sorted(registered_factories()) + shipped_network_names()


def list_methods() -> list[Method]:
    """One instance of every registered method (networks: one per shipped weights tag; their
    weights load on first use, not here)."""
    return [get_method(n) for n in method_names()]


def get_method(name: str, **options: Any) -> Method:
    """A method by name: a built-in (``zeroshot``, ``classical``), a shipped weights tag
    (``bambnet_deblur_small.pixel-synth``), or a family/architecture with ``weights=PATH``.
    ``tta``: test-time augmentation of networks (:mod:`dpcli.methods.tta`); composite methods hand
    it on to their parts.

    Raises:
        ModelError: unknown name (the message lists the valid ones) or unusable weights.
    """
    factories = registered_factories()
    if name in factories:  # composites build their parts through this function
        return factories[name](resolve=get_method, **options)
    try:
        return with_tta(network_method(name, **options), options.get("tta"))
    except UnknownMethod:
        from dpcli.models.registry import deblur_families

        raise ModelError(f"--method {name}: unknown method; valid: auto, {', '.join(method_names())} "
                         f"(or {' | '.join(deblur_families())} with --weights FILE; see `dpdeblur models`)") from None


def default_method(domain: str, needs_pair: bool, candidates: list[Method] | None = None) -> Method | None:
    """The best measured method for ``domain``, trust first: the largest measured gain > 0 among
    methods of that kind meant for the domain that give sharp photos back unchanged
    (``Method.spares_sharp``) and did not fail the broad benchmark's tuning half
    (:func:`~dpcli.methods.builtin.broad_trust`: photos nobody tuned on, none below its input; where
    that benchmark measured some candidates, an unmeasured one counts as untried);
    only where none does, one that spares sharp photos, then the one that made the fewest broad photos
    worse, then the largest gain
    (None when nothing measured beats the input there)."""
    pool = [m for m in (candidates if candidates is not None else list_methods())
            if m.needs_pair == needs_pair and domain in m.domains and m.measured.get(domain, 0.0) > 0.0]
    if not pool:
        return None
    # where the broad benchmark measured some candidates, one it did not measure has no evidence of trust
    measured_broad = any(broad_figure(m.name, domain) is not None for m in pool)
    trusted = [m for m in pool if m.spares_sharp and broad_trust(m.name, domain) is not False
               and not (measured_broad and broad_figure(m.name, domain) is None)]
    if trusted:
        return max(trusted, key=lambda m: m.measured[domain])

    def made_worse(m: Method) -> float:  # photos of the broad tuning half made worse (unmeasured: last)
        fig = broad_figure(m.name, domain)
        return float(fig.get("below_input", 0)) if fig is not None else (math.inf if measured_broad else 0.0)

    # none keeps every promise: sharp photos spared first, then the fewest broad photos made worse,
    # then the largest gain
    return max(pool, key=lambda m: (m.spares_sharp, -made_worse(m), m.measured[domain]))
