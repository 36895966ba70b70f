"""The method interface (spandrel's descriptor, rembg's sessions) and the registry.

A :class:`Method` says what it needs (a DP pair or one image), the space it works in (linear
light or sRGB), the domains it is meant for (``phone``: linear grey raw planes; ``dslr``: colour
sRGB views), and how well it measured there. :meth:`Method.deblur` takes views in the caller's
encoding and converts them ONCE into the method's space and the result back; subclasses only
implement :meth:`Method._deblur` in their own space.

:func:`register_method` adds a factory under a name (the look-ups are in
:mod:`dpcli.methods.registry`, which imports the built-in methods and the networks; this module
imports neither, so there is no import cycle).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from dpcli.domains import DOMAINS, item_domain
from dpcli.arrays import encode
from dpcli.errors import ModelError

__all__ = ["Method", "MethodOutput", "UnknownMethod", "register_method", "registered_factories", "item_domain",
           "SPACES", "DOMAINS"]

SPACES = ("linear", "srgb")


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


class Method(ABC):
    """One deblurring method. Class attributes describe it; instances hold loaded state.

    Attributes:
        name: registry name (``--method``).
        needs_pair: True for DP methods, False for single-image ones.
        space: "linear" or "srgb": the encoding :meth:`_deblur` works in.
        domains: the data it is meant for (a subset of :data:`DOMAINS`).
        summary: one line for ``dpdeblur models`` / errors.
        measured: domain -> mean PSNR gain over the input (dB) on that domain's real dev scenes
            (Pixel 4 4 scenes for phone, Canon 4 scenes for dslr), from data, used to rank defaults.
        min_size: smallest side (px) it can process.
        spares_sharp: False where its measured harm figure says sharp photos do not come back
            unchanged (:func:`dpcli.metrics.spares_sharp`); methods with no such figure count as sparing.
        blur_model: the blur it undoes: ``defocus`` (any lens blur, varying across the frame) or
            ``uniform disc`` (one disc over the whole photo; anything else is left as it is).
    """

    name: str = ""
    needs_pair: bool = True
    space: str = "linear"
    domains: tuple[str, ...] = tuple(DOMAINS)
    summary: str = ""
    measured: dict[str, float] = {}
    min_size: int = 32
    spares_sharp: bool = True
    blur_model: str = "defocus"

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
        given = left
        if convert:
            left = encode(left, to_srgb=not srgb)
            right = None if right is None else encode(right, to_srgb=not srgb)
        image, dmap, info = self._deblur(left, right, kernels=kernels, defocus=defocus, focus=focus)
        if image is left and right is None:  # a single image returned as it came: the caller's own pixels
            image = given
        elif convert:
            image = encode(np.asarray(image), to_srgb=srgb)
        return MethodOutput(np.asarray(image, np.float32), None if dmap is None else np.asarray(dmap, np.float32),
                            info)

    def defocus_map(self, left: np.ndarray, right: np.ndarray, *, srgb: bool, kernels=None,
                    focus: str = "front") -> np.ndarray:
        """(H, W) signed blur radius in px of a pair (this method's own estimate)."""
        return self.deblur(left, right, srgb=srgb, kernels=kernels, defocus=True, focus=focus).defocus

    def handled_by(self, info: dict) -> "Method":
        """The method that made an item's image, from its :class:`MethodOutput` ``info``: this one
        (a composite that hands each item to one part names that part)."""
        return self

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "needs_pair": self.needs_pair, "space": self.space, "blur_model": self.blur_model,
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


def registered_factories() -> dict[str, Callable[..., Method]]:
    """name -> factory of every method registered so far (see :mod:`dpcli.methods.registry`)."""
    return dict(_FACTORIES)


class UnknownMethod(ModelError):
    """A ``--method`` name no method has (:func:`dpcli.methods.registry.get_method` lists the valid ones)."""


def unknown_method(name: str) -> ModelError:
    return UnknownMethod(f"--method {name}: unknown method (see `dpdeblur models`)")
