"""Which view of a dual-pixel pair is the left one, decided from the pair itself.

Physics: swapping the two views is the same as negating every defocus radius (docs/CONVENTIONS.md: the
left view is displaced toward +x behind the focal plane). A pair alone therefore cannot tell its
orientation; it needs a prior. Ours: most photographs have their defocused content BEHIND the
focal plane (positive radius; the camera focused on the subject, the background is blurred), so
the orientation that makes the scene's defocus mostly positive is chosen. A camera profile may
say the opposite (``focus="back"``) or give the answer outright when the data cannot.

Evidence, cheapest first:
1. the global disparity (:func:`horizontal_disparity`): the cross-correlation peak of the two
   views' high-passed rows. Clear (>= ``min_disparity`` px) on most phone and DSLR pairs with
   visible blur; e.g. the Pixel 4 dev scenes give +1.4 to +3.4 px in our orientation.
2. a side balance in [-1, 1]: which side of the focal plane a both-sides layer choice favours
   (mass on positive radii minus mass on negative radii). The caller supplies it (the zero-shot
   stage 1 with ``focus="both"`` is the one we use: :mod:`dpcli.methods.orient`); it decides where
   the disparity is a fraction of a pixel (Canon DPDD scenes: 0.015-0.23 px, balance 0.27-0.35).
3. the hint (a camera profile's known view order); else the pair is kept as given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Orientation", "detect_orientation", "horizontal_disparity", "orient_views", "orient_kernels"]

# Below these the evidence is called undecided (measured: real pairs in the wrong order give
# <= -1.4 px on Pixel 4 and balance <= -0.27 on the Canon scenes; flat or in-focus scenes ~0).
MIN_DISPARITY_PX = 0.5
MIN_BALANCE = 0.05


def horizontal_disparity(left, right, max_shift: int = 12) -> float:
    """Global x shift (px) of the left view relative to the right, by cross-correlating their
    high-passed rows. Positive means left displaced toward +x (positive radii, our convention).

    Args:
        left, right: (C, H, W) or (H, W) views, numpy or torch, linear or sRGB (only the sign and
            size of the shift matter).
        max_shift: largest shift searched, px.
    """
    a = _grey(left)
    b = _grey(right)
    step = max(1, int(max(a.shape) // 1024))
    a, b = a[::step, :], b[::step, :]
    hp = lambda z: z - F.avg_pool2d(z[None, None], 9, 1, 4, count_include_pad=False)[0, 0]  # noqa: E731
    level = float(a.square().mean()) + 1e-30
    a, b = hp(a), hp(b)
    if float(a.square().mean()) <= 1e-10 * level or float(b.square().mean()) <= 1e-10 * level:
        return 0.0  # featureless views: no evidence of any shift
    m = min(max_shift, (a.shape[1] - 1) // 3)
    if m < 1:
        return 0.0
    core_b = b[:, m:-m]
    scores = [float((a[:, m + s : a.shape[1] - m + s] * core_b).mean()) for s in range(-m, m + 1)]
    k = int(np.argmax(scores))
    if 0 < k < 2 * m:  # parabolic sub-pixel peak
        y0, y1, y2 = scores[k - 1], scores[k], scores[k + 1]
        den = y0 - 2 * y1 + y2
        return float(k - m + (0.5 * (y0 - y2) / den if den != 0 else 0.0))
    return float(k - m)


def _grey(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, np.float32))
    return t if t.ndim == 2 else t.float().mean(0)


@dataclass(frozen=True)
class Orientation:
    """The decision for one pair.

    swapped: True when the views must be exchanged (and calibration kernels with them).
    label: "as given" | "swapped".
    source: what decided: "user" (--swap-lr/--no-swap-lr); the source's known order, named
        (e.g. "camera profile pixel4", "written by dpdeblur synth": :func:`dpcli.pipeline.known_order`,
        which decides before any evidence is measured); "disparity", "layers" (side balance),
        "profile" (a ``hint`` used when the data could not tell) or "undecided".
    score: the deciding evidence in our orientation after the decision (px of disparity, or
        balance); positive agrees with the prior.
    evidence: every measurement made, e.g. {"disparity_px": -2.1, "balance": -0.3}.
    """

    swapped: bool
    source: str
    score: float = 0.0
    evidence: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "swapped" if self.swapped else "as given"

    def describe(self) -> str:
        """'swapped (disparity -2.10 px)' for summaries."""
        ev = self.evidence
        if self.source == "disparity":
            return f"{self.label} (disparity {ev.get('disparity_px', 0.0):+.2f} px)"
        if self.source == "layers":
            return f"{self.label} (layer balance {ev.get('balance', 0.0):+.2f})"
        return f"{self.label} ({self.source})"


def detect_orientation(left, right, *, focus: Literal["front", "back"] = "front",
                       side_balance: Callable[[object, object], float] | None = None,
                       hint: bool | None = None, user: bool | None = None,
                       min_disparity: float = MIN_DISPARITY_PX, min_balance: float = MIN_BALANCE) -> Orientation:
    """Decide whether ``(left, right)`` must be swapped into OUR orientation.

    Args:
        left, right: the views as given, (C, H, W) or (H, W), numpy or torch.
        focus: the prior: "front" = content mostly behind the focal plane (positive radii, most
            photos; Pixel 4), "back" = mostly in front of it.
        side_balance: optional ``fn(left, right) -> float`` in [-1, 1], the share of the scene's
            defocus on positive radii minus that on negative radii (called only when the
            disparity is below ``min_disparity``).
        hint: a camera profile's answer (True = the files are in swapped order), used when the
            data is undecided.
        user: an explicit --swap-lr (True) / --no-swap-lr (False): decides, nothing measured.

    Returns:
        :class:`Orientation`.
    """
    if user is not None:
        return Orientation(bool(user), "user")
    sign = 1.0 if focus != "back" else -1.0
    evidence: dict = {}
    d = horizontal_disparity(left, right)
    evidence["disparity_px"] = d
    if abs(d) >= min_disparity:
        return Orientation(sign * d < 0, "disparity", abs(d), evidence)
    if side_balance is not None:
        b = float(side_balance(left, right))
        evidence["balance"] = b
        if abs(b) >= min_balance:
            return Orientation(sign * b < 0, "layers", abs(b), evidence)
    if hint is not None:
        return Orientation(bool(hint), "profile", 0.0, evidence)
    return Orientation(False, "undecided", 0.0, evidence)


def orient_views(left, right, orientation: Orientation, kernels: tuple | None = None):
    """Apply an :class:`Orientation`: -> (left, right, kernels) with views AND calibration kernels
    (left, right) exchanged together when ``orientation.swapped``."""
    if not orientation.swapped:
        return left, right, kernels
    return right, left, (None if kernels is None else (kernels[1], kernels[0]))


def orient_kernels(left, right, focus: Literal["front", "back"] = "front") -> tuple[object, object, bool]:
    """Calibration kernels (left (P, k, k), right (P, k, k)) in OUR orientation, read from the
    kernels themselves: our left kernel's mass lies toward +x behind the focal plane (the ramp of
    docs/CONVENTIONS.md), so the pair whose left centroid is further toward +x is ours (the same prior
    as the views: a calibration target behind the focal plane, ``focus="back"`` flips it). This
    holds however the files were named or renamed, so both file orders of a pair get the same
    kernels. Returns (left, right, swapped)."""
    from dpcli.optics.kernels import kernel_centroid

    cl = kernel_centroid(torch.as_tensor(np.asarray(left, np.float32)))[..., 0].mean()
    cr = kernel_centroid(torch.as_tensor(np.asarray(right, np.float32)))[..., 0].mean()
    swapped = bool((cl < cr) if focus != "back" else (cl > cr))
    return (right, left, True) if swapped else (left, right, False)
