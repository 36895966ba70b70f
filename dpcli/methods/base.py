"""The method interface (spandrel's descriptor, rembg's sessions) and the registry.

A :class:`Method` says what it needs (a DP pair or one image), the space it works in (linear
light or sRGB), the domains it is meant for (``phone``: linear grey raw planes; ``dslr``: colour
sRGB views), and how well it measured there. :meth:`Method.deblur` takes views in the caller's
encoding and converts them ONCE into the method's space and the result back; subclasses only
implement :meth:`Method._deblur` in their own space.

Registry: :func:`register_method` adds a factory under a name; :func:`get_method` builds one by
name (``arch.tag`` names of shipped weights are resolved through :mod:`dpcli.methods.network`);
:func:`list_methods` lists every name; :func:`default_method` picks the best measured method for
a domain from the data (``measured`` gains), so better weights take over without code changes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from dpcli.errors import ModelError

__all__ = ["Method", "MethodOutput", "register_method", "get_method", "list_methods", "method_names",
           "default_method", "item_domain", "SPACES", "DOMAINS"]

SPACES = ("linear", "srgb")
DOMAINS = ("phone", "dslr")


@dataclass
class MethodOutput:
    """What a method returns, in the caller's encoding.

    image: (C, H, W) float32 all-in-focus image (same encoding as the input views).
    defocus: (H, W) float32 signed blur radius in px, or None when not asked for.
    info: method facts for summaries (e.g. stage timings, the map's source).
    """

    image: np.ndarray
    defocus: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def _encode(x: np.ndarray, to_srgb: bool) -> np.ndarray:
    from dpcli.optics import linear_to_srgb, srgb_to_linear

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    fn = linear_to_srgb if to_srgb else srgb_to_linear
    return fn(t.clamp(0, None) if to_srgb else t.clamp(0, 1)).numpy()


class Method(ABC):
    """One deblurring method. Class attributes describe it; instances hold loaded state.

    Attributes:
        name: registry name (``--model``).
        needs_pair: True for DP methods, False for single-image ones.
        space: "linear" or "srgb": the encoding :meth:`_deblur` works in.
        domains: the data it is meant for (a subset of :data:`DOMAINS`).
        summary: one line for ``dpdeblur models`` / errors.
        measured: domain -> mean PSNR gain over the input (dB) on that domain's real dev scenes
            (Pixel 4 4 scenes for phone, Canon 4 scenes for dslr), from data, used to rank defaults.
        min_size: smallest side (px) it can process.
    """

    name: str = ""
    needs_pair: bool = True
    space: str = "linear"
    domains: tuple[str, ...] = DOMAINS
    summary: str = ""
    measured: dict[str, float] = {}
    min_size: int = 32

    # -- what callers use --------------------------------------------------------------------
    def deblur(self, left: np.ndarray, right: np.ndarray | None = None, *, srgb: bool, kernels=None,
               defocus: bool = False, focus: str = "front") -> MethodOutput:
        """All-in-focus image (and the defocus map with ``defocus=True``).

        Args:
            left, right: (C, H, W) float32 views in [0, 1] in OUR orientation (right None for a
                single image); ``srgb`` says how they are encoded.
            kernels: measured (left (P, k, k), right (P, k, k)) calibration kernels in OUR
                orientation, or None (methods that cannot use them ignore them and say so in info).
            focus: the focus side prior ("front": content behind the focal plane).
        Returns: :class:`MethodOutput` in the input's encoding.
        """
        from dpcli.errors import InputError

        if self.needs_pair and right is None:
            raise InputError(f"{self.name} needs a dual-pixel pair, got a single image")
        h, w = left.shape[-2:]
        if min(h, w) < self.min_size:
            raise InputError(f"the image is {w}x{h} px; {self.name} needs at least {self.min_size} px per side")
        convert = srgb != (self.space == "srgb")
        if convert:
            left = _encode(left, to_srgb=not srgb)
            right = None if right is None else _encode(right, to_srgb=not srgb)
        image, dmap, info = self._deblur(left, right, kernels=kernels, defocus=defocus, focus=focus)
        if convert:
            image = _encode(np.asarray(image), to_srgb=srgb)
        return MethodOutput(np.asarray(image, np.float32), None if dmap is None else np.asarray(dmap, np.float32),
                            info)

    def defocus_map(self, left: np.ndarray, right: np.ndarray, *, srgb: bool, kernels=None,
                    focus: str = "front") -> np.ndarray:
        """(H, W) signed blur radius in px of a pair (this method's own estimate)."""
        return self.deblur(left, right, srgb=srgb, kernels=kernels, defocus=True, focus=focus).defocus

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "needs_pair": self.needs_pair, "space": self.space,
                "domains": list(self.domains), "measured_gain_db": dict(self.measured), "summary": self.summary}

    # -- what methods implement ---------------------------------------------------------------
    @abstractmethod
    def _deblur(self, left: np.ndarray, right: np.ndarray | None, *, kernels, defocus: bool,
                focus: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """Views in ``self.space`` -> (image in ``self.space``, defocus map or None, info)."""


# --- registry ------------------------------------------------------------------------------------

_FACTORIES: dict[str, Callable[..., Method]] = {}


def register_method(name: str) -> Callable[[Callable[..., Method]], Callable[..., Method]]:
    """Decorator: register a factory (a Method subclass or a function returning one) under ``name``."""

    def wrap(factory: Callable[..., Method]) -> Callable[..., Method]:
        if name in _FACTORIES:
            raise ValueError(f"method {name!r} registered twice")
        _FACTORIES[name] = factory
        return factory

    return wrap


def _ensure_registered() -> None:
    import dpcli.methods.builtin  # noqa: F401  (registration side effects)
    import dpcli.methods.composite  # noqa: F401


def method_names() -> list[str]:
    """Every name ``--model`` accepts without --weights: built-in methods, then shipped weights."""
    from dpcli.methods.network import shipped_network_names

    _ensure_registered()
    return sorted(_FACTORIES) + shipped_network_names()


def list_methods() -> list[Method]:
    """One instance of every registered method (networks: one per shipped weights tag; their
    weights load on first use, not here)."""
    return [get_method(n) for n in method_names()]


def get_method(name: str, **options: Any) -> Method:
    """A method by name: a built-in (``zeroshot``, ``classical``), a shipped weights tag
    (``bambnet_deblur_small.pixel-synth``), or a family/architecture with ``weights=PATH``.
    ``tta``: test-time augmentation of networks (:mod:`dpcli.methods.tta`).

    Raises:
        ModelError: unknown name (the message lists the valid ones) or unusable weights.
    """
    from dpcli.methods.network import network_method
    from dpcli.methods.tta import with_tta  # tta=True|False|None (measured default): networks only

    _ensure_registered()
    if name in _FACTORIES:
        return _FACTORIES[name](**options)  # composite methods hand ``tta`` on to their parts
    return with_tta(network_method(name, **options), options.get("tta"))


def item_domain(channels: int, srgb: bool) -> str:
    """The domain of some data: ``phone`` for grey linear (raw DP planes), else ``dslr``."""
    return "phone" if channels == 1 and not srgb else "dslr"


def default_method(domain: str, needs_pair: bool, candidates: list[Method] | None = None) -> Method | None:
    """The best measured method for ``domain``: the largest measured gain > 0 among methods of
    that kind meant for the domain (None when nothing measured beats the input there)."""
    pool = [m for m in (candidates if candidates is not None else list_methods())
            if m.needs_pair == needs_pair and domain in m.domains and m.measured.get(domain, 0.0) > 0.0]
    if not pool:
        return None
    return max(pool, key=lambda m: m.measured[domain])


def unknown_method(name: str) -> ModelError:
    return ModelError(f"--model {name}: unknown method; valid: auto, {', '.join(method_names())} "
                      "(or bambnet | defocusgan with --weights FILE; see `dpdeblur models`)")
