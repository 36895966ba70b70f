"""Test-time augmentation (TTA) of network methods: run a network on transformed copies of its
input, undo each transform on the output, average.

DP pairs (dpcli.train.data's flip docstring, docs/CONVENTIONS.md orientation): a vertical flip commutes
with the DP blur; a horizontal mirror of a pair is the mirrored scene at radius ``-r`` (its views
exchange roles), so mirrored AND exchanged it is the mirrored scene at ``+r``; exchanging the views
alone is the same scene at ``-r`` with the same all-in-focus image. All 8 combinations of
(vertical flip, horizontal flip, L/R exchange) are pairs of the same AiF (up to the spatial flips,
undone on the output); their average is therefore independent of the order the files were given
in: the transforms of (R, L) are those of (L, R) in another order. :data:`SIGN_KEEPING` are the 4
that keep the radius' sign (the ones the training augmentation uses).

Which set runs (:data:`PAIR_SETS`): methods receive views in OUR orientation (``run`` and
``dpcli.deblur`` detect it first), so ``--tta`` runs the 4 :data:`SIGN_KEEPING` passes: on the 4
Canon dev scenes the DSLR BaMBNet gains more from them than from all 8, whose 4 sign-flipped pairs
it deblurs worse (docs/benchmarks.md); ``passes=8`` gives the order-free average. Without the
flag, the measured default (:func:`tta_passes`) may run a cheaper set (2: identity + vertical flip).

Single images: the 8 dihedral transforms (rotations by k * 90 degrees, each also transposed);
the combined defocus kernel is rotationally symmetric, so each is a photo of the same kind.

:class:`TTA` wraps a :class:`~dpcli.methods.base.Method`; :func:`with_tta` is what ``get_method``
calls with the ``tta`` option (True, False, or None: where ``measured.json`` says it is worth its
time, see :func:`tta_worth`).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from dpcli.methods.base import Method

__all__ = ["PairTransform", "DP_TRANSFORMS", "SIGN_KEEPING", "DIHEDRAL", "PAIR_SETS", "SINGLE_SETS", "TTA_ON",
           "dihedral", "undo_dihedral", "flip_inplace", "tta_pair", "tta_single", "TTA", "with_tta", "tta_passes",
           "tta_worth", "TTA_MIN_GAIN_PER_PASS"]

# the rule for "default only where it is worth its time": a set of n passes is worth it for a
# (method, domain) when its measured mean gain on that domain's dev scenes is at least this many dB
# per extra pass (n - 1), and no dev scene got worse (measured.json "tta" section; tta_passes)
TTA_MIN_GAIN_PER_PASS = 0.05


@dataclass(frozen=True)
class PairTransform:
    """One DP-pair transform: vertical flip, horizontal flip, exchange of the views."""

    vflip: bool = False
    hflip: bool = False
    swap: bool = False

    @property
    def keeps_sign(self) -> bool:
        """True when the transformed pair has the same radius sign (hflip and swap together or neither)."""
        return self.hflip == self.swap

    def apply(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(C, H, W) views -> the transformed pair (contiguous copies)."""
        if self.swap:
            left, right = right, left
        return self._flip(left), self._flip(right)

    @contextmanager
    def applied(self, left: np.ndarray, right: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The transformed pair while the block runs, flipped in the views' own memory and flipped
        back after it (also on an error): no frame-sized copies, the same values as :meth:`apply`.
        Views that cannot be flipped in place (read-only, or sharing memory) are copied instead."""
        axes = self._axes()
        if not axes or not (left.flags.writeable and right.flags.writeable) or np.may_share_memory(left, right):
            yield self.apply(left, right)
            return
        for x in (left, right):
            flip_inplace(x, axes)
        try:
            yield (right, left) if self.swap else (left, right)
        finally:
            for x in (left, right):
                flip_inplace(x, axes)

    def undo(self, image: np.ndarray) -> np.ndarray:
        """(C, H, W) output of the transformed pair -> the original frame (flips are their own inverse)."""
        return self._flip(image)

    def _axes(self) -> tuple[int, ...]:
        return tuple(a for a, on in ((-2, self.vflip), (-1, self.hflip)) if on)

    def _flip(self, x: np.ndarray) -> np.ndarray:
        axes = self._axes()
        return np.ascontiguousarray(np.flip(x, axes) if axes else x)


def flip_inplace(x: np.ndarray, axes: tuple[int, ...], block: int = 64) -> np.ndarray:
    """Reverse ``x`` along each of ``axes`` in its own memory, ``block`` slices at a time (buffers
    of that size, never a copy of the whole array); returns ``x``."""
    for axis in axes:
        v = np.moveaxis(x, axis, 0)
        n = v.shape[0]
        for i in range(0, n // 2, block):
            j = min(i + block, n // 2)
            head = v[i:j].copy()
            v[i:j] = v[n - j:n - i][::-1]
            v[n - j:n - i] = head[::-1]
    return x


DP_TRANSFORMS: tuple[PairTransform, ...] = tuple(PairTransform(v, h, s) for v in (False, True)
                                                 for h in (False, True) for s in (False, True))
SIGN_KEEPING: tuple[PairTransform, ...] = tuple(t for t in DP_TRANSFORMS if t.keeps_sign)
DIHEDRAL: tuple[int, ...] = tuple(range(8))
# the sets by number of passes (1 = no TTA); --tta runs TTA_ON, the default where measured worth it
PAIR_SETS: dict[int, tuple[PairTransform, ...]] = {1: (PairTransform(),), 2: (PairTransform(), PairTransform(vflip=True)),
                                                   4: SIGN_KEEPING, 8: DP_TRANSFORMS}
SINGLE_SETS: dict[int, tuple[int, ...]] = {1: (0,), 2: (0, 2), 4: (0, 1, 2, 3), 8: DIHEDRAL}
TTA_ON = {"pair": 4, "single": 8}


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Dihedral transform ``k`` in 0..7 of (C, H, W): rotation by (k % 4) * 90 degrees, then a
    transpose of H and W for k >= 4."""
    y = np.rot90(x, k % 4, axes=(-2, -1))
    if k >= 4:
        y = np.swapaxes(y, -2, -1)
    return np.ascontiguousarray(y)


def undo_dihedral(y: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`dihedral`."""
    if k >= 4:
        y = np.swapaxes(y, -2, -1)
    return np.ascontiguousarray(np.rot90(y, -(k % 4), axes=(-2, -1)))


def _mean(images: Iterable[np.ndarray], inputs: tuple[np.ndarray, ...] = ()) -> np.ndarray:
    """The mean of the images as they come, holding at most two of them (or their float64 sum) while
    the next pass runs. Two are averaged in the first one's memory where it is writeable and not one
    of ``inputs``: a float32 sum of two is one rounding of the exact sum, so this is bit for bit the
    float64 mean without its frame-sized float64 buffer. Three or more are summed in float64, so the
    mean does not depend on the order of the passes."""
    held: list[np.ndarray] = []
    total, n = None, 0
    for im in images:
        n += 1
        if total is None and len(held) < 2:
            held.append(im)
            continue
        if total is None:
            total = np.zeros(im.shape, np.float64)
            for h in held:
                total += h
            held = []
        total += im
        del im
    if total is not None:
        total /= n
        return total.astype(np.float32)
    if len(held) == 1:
        return np.asarray(held[0], np.float32)
    first, second = held
    if first.dtype != np.float32 or not first.flags.writeable or any(np.may_share_memory(first, x) for x in inputs):
        first = np.array(first, np.float32)
    first += second
    first *= 0.5
    return first


def tta_pair(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], left: np.ndarray, right: np.ndarray,
             transforms: tuple[PairTransform, ...] = SIGN_KEEPING, identity: np.ndarray | None = None) -> np.ndarray:
    """Mean over ``transforms`` of ``t.undo(fn(*t.apply(left, right)))``: (C, H, W) views -> (C, H, W);
    ``identity``: fn's output on the untransformed pair when the caller has it already. The views
    are transformed in their own memory while ``fn`` runs (:meth:`PairTransform.applied`) and are
    as they came when it returns."""
    def one(t: PairTransform) -> np.ndarray:
        if identity is not None and t == PairTransform():
            return np.asarray(identity, np.float32)
        with t.applied(left, right) as views:
            out = np.asarray(fn(*views), np.float32)
            if any(np.may_share_memory(out, v) for v in views):
                out = out.copy()  # an output that is a view of the input must not flip back with it
        return flip_inplace(out, t._axes()) if out.flags.writeable else t.undo(out)

    return _mean((one(t) for t in transforms), inputs=(left, right))


def tta_single(fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
               transforms: tuple[int, ...] = DIHEDRAL, identity: np.ndarray | None = None) -> np.ndarray:
    """Mean over the dihedral ``transforms`` of ``undo(fn(dihedral(image)))``: (C, H, W) -> (C, H, W)."""
    return _mean((np.asarray(identity, np.float32) if identity is not None and k == 0
                  else undo_dihedral(np.asarray(fn(dihedral(image, k)), np.float32), k) for k in transforms),
                 inputs=(image,))


def _measured_tta(name: str) -> dict[str, dict]:
    """domain -> {"passes": {"2"|"4"|"8": {"gain_db", "worst_db"}}, ...}: what TTA added to ``name``
    on the domain's dev scenes (measured.json "tta", written by benchmarks/bench_dev.py tta)."""
    from dpcli.methods.builtin import _MEASURED

    try:
        return dict(json.loads(_MEASURED.read_text()).get("tta", {}).get(name, {}))
    except (OSError, ValueError):
        return {}


def tta_passes(name: str, domain: str) -> int:
    """The default number of passes for ``name`` in ``domain``: among the measured sets, the one
    with the largest gain of those worth their time (at least :data:`TTA_MIN_GAIN_PER_PASS` dB
    per extra pass, no dev scene worse than without TTA); 1 (no TTA) when none is."""
    sets = _measured_tta(name).get(domain, {}).get("passes", {})
    worth = {int(n): m["gain_db"] for n, m in sets.items()
             if m.get("gain_db", 0.0) >= TTA_MIN_GAIN_PER_PASS * (int(n) - 1) and m.get("worst_db", -1.0) >= 0.0}
    return max(worth, key=worth.get) if worth else 1


def tta_worth(name: str, domain: str) -> bool:
    """True where the measured default turns TTA on (:func:`tta_passes` > 1)."""
    return tta_passes(name, domain) > 1


class TTA(Method):
    """A method run on transformed copies of its input, outputs averaged (:data:`PAIR_SETS`,
    :data:`SINGLE_SETS`). ``mode`` True: :data:`TTA_ON` passes (or ``passes``); None: the measured
    default of the item's domain (:func:`tta_passes`). Everything else is the inner method's."""

    def __init__(self, inner: Method, mode: bool | None = True, passes: int | None = None) -> None:
        self.inner, self.mode, self.passes = inner, mode, passes
        for attr in ("name", "needs_pair", "space", "domains", "summary", "min_size"):
            setattr(self, attr, getattr(inner, attr))
        # what run runs is the network with its default passes: rank it by that (the inner gain plus
        # what those passes added on the domain's dev scenes), so a composite is compared with it
        self.measured = dict(inner.measured)
        if mode is None:
            sets = _measured_tta(inner.name)
            for d in self.measured:
                n = tta_passes(inner.name, d)
                if n > 1:
                    self.measured[d] += sets[d]["passes"][str(n)]["gain_db"]
        self._n = 1

    def __getattr__(self, attr: str) -> Any:  # the inner method's own attributes (task, weights ...)
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def deblur(self, left, right=None, *, srgb: bool, kernels=None, defocus: bool = False, focus: str = "front"):
        from dpcli.domains import item_domain

        if self.mode is None:
            self._n = tta_passes(self.name, item_domain(left.shape[0], srgb))
        else:
            self._n = (self.passes or TTA_ON["single" if right is None else "pair"]) if self.mode else 1
        return super().deblur(left, right, srgb=srgb, kernels=kernels, defocus=defocus, focus=focus)

    def defocus_map(self, left, right, *, srgb: bool, kernels=None, focus: str = "front") -> np.ndarray:
        """The inner method's map (TTA averages images, not maps: no extra passes)."""
        return self.inner.defocus_map(left, right, srgb=srgb, kernels=kernels, focus=focus)

    def _deblur(self, left, right, *, kernels, defocus, focus):
        # the identity pass also gives the defocus map; it is one of the averaged outputs
        image, dmap, info = self.inner._deblur(left, right, kernels=kernels, defocus=defocus, focus=focus)
        if self._n <= 1:
            return image, dmap, info

        def run(l, r=None):
            return self.inner._deblur(l, r, kernels=None, defocus=False, focus=focus)[0]

        if right is None:
            image = tta_single(run, left, SINGLE_SETS[self._n], identity=image)
        else:
            image = tta_pair(run, left, right, PAIR_SETS[self._n], identity=image)
        return image, dmap, {**info, "tta": f"{self._n} passes"}


def with_tta(method: Method, tta: bool | None) -> Method:
    """``method`` wrapped in :class:`TTA` for ``tta`` True, or None where :func:`tta_worth` holds
    for one of its domains (networks only: training-free methods are returned as they are)."""
    from dpcli.methods.network import NetworkMethod

    if tta is False or not isinstance(method, NetworkMethod):
        return method
    if tta is None and not any(tta_worth(method.name, d) for d in method.domains):
        return method  # the measured default is off everywhere this network is meant for
    return TTA(method, mode=tta)
