"""Post steps: what runs after a network, named, so that a weights entry lists them and a method
composes them (the engine, :class:`dpcli.engine.Deblurrer`, only runs the network).

A weights entry (``dpcli/weights/manifest.json``) says ``"post": [...]``, steps applied in list
order, each ``NAME`` or ``NAME:ARGUMENT``:

=======================  ========  =====================================================================
step                     runs on   what it does
=======================  ========  =====================================================================
``keep_mean:PX``         both      the input's local mean at PX px restored (:func:`dpcli.optics.windows.
                                   restore_local_mean`): drops the brightness / colour drift a network
                                   learnt from its data
``focus_gate``           pairs     the correction kept only where the pair is out of focus
                                   (:func:`dpcli.optics.focus_gate`): an in-focus photo comes back
                                   unchanged; also the capture fallback of :func:`dpcli.pipeline.
                                   capture_fallback`
``endorse:ARCH.TAG``     singles   the correction kept only where a second single-image network
                                   (registered weights or a file) makes it too
                                   (:func:`dpcli.optics.endorsement_gate`)
``correction_gate``      singles   the correction kept only where it restores detail the input lacks
                                   (:func:`dpcli.optics.correction_gate`)
``blur_gate:ARCH.TAG``   singles   the correction kept only where a BlurNet (registered weights or a
                                   file, :mod:`dpcli.models.blurnet`) reads the image out of focus
``focus_part:ARCH.TAG``  singles   the correction kept only for a photo that a BlurNet (registered
                                   weights or a file) reads partly in focus (:func:`dpcli.optics.
                                   in_focus_share`): with nothing in focus a single photo cannot tell
                                   a scene soft in itself (bokeh, grain) from defocus, and comes back
                                   unchanged
``blur_check``           pairs     an output that needs a much larger blur than the pair's disparity
                                   measures to give the pair back (over-deblurred), or whose
                                   correction that blur does not explain, keeps only the share of its
                                   correction the measured blur explains
                                   (:func:`dpcli.classical.consistency.check_pair`)
=======================  ========  =====================================================================

A gate blends: ``reference + gate * (out - reference)``, the reference being the input (a pair's
mean view). After the steps the image is clamped to [0, 1]. Each step is timed as the stage
``post NAME`` (:func:`dpcli.timing.stage`).

>>> [step.spec for step in parse_post(["keep_mean:32", "correction_gate"])]
['keep_mean:32', 'correction_gate']
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Iterable

import torch

from dpcli.errors import ModelError
from dpcli.timing import stage

if TYPE_CHECKING:
    from dpcli.engine import Deblurrer

__all__ = ["PostInput", "PostStep", "KeepMean", "FocusGate", "Endorse", "CorrectionGate", "BlurGate", "FocusPart",
           "BlurCheck", "STEPS", "post_step", "parse_post", "find_step", "Post", "post_for"]


@dataclass(frozen=True)
class PostInput:
    """What a step reads besides the output: the input it corrects and the network's setting.

    reference: (N, C, H, W) float, the input (a pair's mean view), expanded to the output's shape.
    pair: the (left, right) views of a DP pair, None for a single image.
    srgb: the network's input is sRGB-encoded (False: linear light).
    device, precision: where a step's own network runs (the first network's).
    """

    reference: torch.Tensor
    pair: tuple[torch.Tensor, torch.Tensor] | None
    srgb: bool
    device: str = "cpu"
    precision: str = "fp32"


def _blend(out: torch.Tensor, reference: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """The correction ``out - reference`` kept where ``gate`` is open: reference + gate (out -
    reference), computed in ``out``'s own memory (a step's output is its own, so no frame is copied)."""
    return out.sub_(reference).mul_(gate).add_(reference)


class PostStep:
    """One named step: ``step(out, x)`` -> the output after it. Class facts: ``name``; ``gate`` (a
    gate, skipped for a second opinion's raw view); ``pairs`` / ``singles`` (which inputs it runs on;
    on the others it is skipped); ``why_declined``."""

    name: ClassVar[str] = ""
    gate: ClassVar[bool] = True
    pairs: ClassVar[bool] = False
    singles: ClassVar[bool] = True
    why_declined: ClassVar[str] = ""  # what a step that declines an item says (declines())

    @property
    def spec(self) -> str:
        """The step as a post list writes it."""
        arg = self.argument()
        return self.name if arg is None else f"{self.name}:{arg}"

    def argument(self) -> str | None:
        return None

    def runs_on(self, x: PostInput) -> bool:
        return self.pairs if x.pair is not None else self.singles

    def declines(self, x: PostInput) -> list[bool] | None:
        """Per item, whether this step gives the input back whatever the network makes
        (``why_declined`` says why in user terms); None for a step that must see the output to say
        (every step but one that reads the input alone). A method asks before the network runs
        (:meth:`Post.precheck`) and skips the network where every item is declined."""
        return None

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class KeepMean(PostStep):
    """The input's local mean at ``px`` px restored (a step, not a gate: a second opinion keeps it)."""

    px: float
    name: ClassVar[str] = "keep_mean"
    gate: ClassVar[bool] = False
    pairs: ClassVar[bool] = True

    def argument(self) -> str:
        return f"{self.px:g}"

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        from dpcli.optics.windows import by_rows, restore_local_mean, smooth_radius

        return by_rows(lambda o, ref: restore_local_mean(o, ref, self.px), [out, x.reference],
                       3 * smooth_radius(self.px) + 4)


@dataclass(frozen=True)
class FocusGate(PostStep):
    """A DP pair's correction kept only where the pair is out of focus."""

    name: ClassVar[str] = "focus_gate"
    pairs: ClassVar[bool] = True
    singles: ClassVar[bool] = False

    @staticmethod
    def gate_map(left: torch.Tensor, right: torch.Tensor, *, srgb: bool) -> torch.Tensor:
        """(N, C, H, W) views -> (N, 1, H, W) in [0, 1]: 0 inside the depth of field."""
        from dpcli.optics.disparity import focus_gate
        from dpcli.optics.windows import by_rows

        # strips: the gate reads 48 px around a pixel (window 7 at scale 4, the dilation over 8 + 8)
        return by_rows(lambda a, b: focus_gate(a.float(), b.float(), srgb=srgb), [left, right], 64, align=4)

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        return _blend(out, x.reference, self.gate_map(x.pair[0], x.pair[1], srgb=x.srgb))

    def fall_back(self, image: torch.Tensor, left: torch.Tensor, right: torch.Tensor, capture: torch.Tensor, *,
                  srgb: bool) -> torch.Tensor:
        """``image`` (already gated against the pair's mean view) falling back to the source's own
        combined ``capture`` where the pair is in focus: ``image + (1 - gate) (capture - mean)``.
        (N, C, H, W) tensors in the network's space (``srgb``); not clamped."""
        gate = self.gate_map(left, right, srgb=srgb)
        return image + (1 - gate) * (capture - (left + right) / 2)


@dataclass(frozen=True)
class Endorse(PostStep):
    """A single image's correction kept only where the second network ``weights`` (``arch.tag`` or
    a file, single-image) makes it too. The second is fed the image in its own space and runs with
    its own post steps that are not gates (its local mean kept)."""

    weights: str
    name: ClassVar[str] = "endorse"

    def argument(self) -> str:
        return self.weights

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        return _blend(out, x.reference, self.gate_map(x.reference, out, x))

    def gate_map(self, image: torch.Tensor, corrected: torch.Tensor, x: PostInput) -> torch.Tensor:
        """(N, C, H, W) input and output in the first network's space -> (N, 1, H, W) in [0, 1]
        (:func:`dpcli.optics.endorsement_gate` in sRGB values)."""
        from dpcli.engine import named_session
        from dpcli.optics import endorsement_gate, linear_to_srgb, srgb_to_linear
        from dpcli.optics.windows import by_rows

        # loading for "deblur_single" refuses weights of another task (dpcli.models.loading._check_task)
        second = named_session(self.weights, "deblur_single", device=x.device, precision=x.precision)
        linear, second_linear = not x.srgb, second.loaded.space == "linear"
        fed = image if linear == second_linear else (srgb_to_linear(image) if second_linear
                                                     else linear_to_srgb(image.clamp(0, 1)))
        other = post_for(second)(second.run([fed]), [fed], gates=False)

        def gate(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # one strip, in sRGB
            views = [linear_to_srgb(v.clamp(0, 1)) if linear else v for v in (a, b)]
            views.append(linear_to_srgb(c.clamp(0, 1)) if second_linear else c)
            return endorsement_gate(*views)

        # strips: the gate reads 37 px around a pixel (band 1 x 3 passes, window 10, dilation 12 + 12)
        return by_rows(gate, [image, corrected, other], 48)


@dataclass(frozen=True)
class CorrectionGate(PostStep):
    """A single image's correction kept only where it restores detail the input lacks (read in sRGB)."""

    name: ClassVar[str] = "correction_gate"

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        from dpcli.optics import correction_gate, linear_to_srgb
        from dpcli.optics.windows import by_rows

        def gate(image: torch.Tensor, corrected: torch.Tensor) -> torch.Tensor:  # one strip; the gate reads sRGB
            if not x.srgb:
                image, corrected = linear_to_srgb(image.clamp(0, 1)), linear_to_srgb(corrected.clamp(0, 1))
            return correction_gate(image, corrected)

        # strips: the gate reads 23 px around a pixel (band 4 x 3 passes, window 3, dilation 4 + 4)
        return _blend(out, x.reference, by_rows(gate, [x.reference, out], 32))


@dataclass(frozen=True)
class BlurGate(PostStep):
    """A single image's correction kept only where the BlurNet ``weights`` (``arch.tag`` or a file)
    reads the image out of focus."""

    weights: str
    name: ClassVar[str] = "blur_gate"

    def argument(self) -> str:
        return self.weights

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        return _blend(out, x.reference, self.gate_map(x.reference, x))

    def gate_map(self, image: torch.Tensor, x: PostInput) -> torch.Tensor:
        """(N, C, H, W) in the network's space -> (N, 1, H, W) in [0, 1]: the BlurNet's probability
        of blur through :func:`dpcli.optics.windows.ramp_gate` with the BlurNet's ``gate_settings``."""
        from dpcli.engine import named_session
        from dpcli.optics import linear_to_srgb
        from dpcli.optics.windows import ramp_gate

        session = named_session(self.weights, "blur", device=x.device, precision=x.precision)
        if not x.srgb:
            image = linear_to_srgb(image.clamp(0, 1))
        return ramp_gate(session.blur_map(image), **session.module.gate_settings)


@dataclass(frozen=True)
class FocusPart(PostStep):
    """A single photo's correction kept only where the BlurNet ``weights`` (``arch.tag`` or a file)
    reads a part of the photo in focus: at least ``least`` of its pixels with detail
    (:func:`dpcli.optics.in_focus_share`). A photo out of focus in parts keeps its subject sharp; one
    soft everywhere (bokeh, film grain, a soft surface, or blur the same over the whole frame, which
    the blind deconvolution takes where it measures it) comes back unchanged: a single photo cannot
    tell its softness from defocus, and a network that sharpens it invents edges."""

    weights: str
    least: float = 0.05
    name: ClassVar[str] = "focus_part"
    why_declined: ClassVar[str] = "no part of the photo reads in focus, so its softness may be the scene's own"

    def argument(self) -> str:
        return self.weights

    def share(self, image: torch.Tensor, x: PostInput) -> torch.Tensor:
        """(N, C, H, W) in the network's space -> (N,) the share of its detailed pixels read in focus."""
        from dpcli.engine import named_session
        from dpcli.optics import IN_FOCUS_DEFAULTS, in_focus_pixels, in_focus_share, linear_to_srgb
        from dpcli.optics.windows import by_rows

        session = named_session(self.weights, "blur", device=x.device, precision=x.precision)
        srgb = image if x.srgb else linear_to_srgb(image.clamp(0, 1))
        # strips: the detail reads 9 px around a pixel (band 2: 3 passes of radius 2, window 3)
        return in_focus_share(by_rows(lambda p, im: in_focus_pixels(p, im, **IN_FOCUS_DEFAULTS),
                                      [session.blur_map(srgb), srgb], 16))

    def declines(self, x: PostInput) -> list[bool]:
        """Per item: no part in focus (it reads the input alone)."""
        return [float(v) < self.least for v in self.share(x.reference, x)]

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        for n, declined in enumerate(self.declines(x)):
            if declined:
                out[n] = x.reference[n]
        return out


@dataclass(frozen=True)
class BlurCheck(PostStep):
    """A DP pair's output checked against the blur the pair itself measures: where re-blurring it
    gives the pair's combined view back only with a disc well over the measured radius (a soft
    texture sharpened into edges that were never there), or where the measured blur explains almost
    none of the correction, only the share that it explains is kept
    (:func:`dpcli.classical.consistency.check_pair`)."""

    name: ClassVar[str] = "blur_check"
    pairs: ClassVar[bool] = True
    singles: ClassVar[bool] = False

    def __call__(self, out: torch.Tensor, x: PostInput) -> torch.Tensor:
        from dpcli.classical.consistency import ConsistencyConfig, check_pair

        cfg = ConsistencyConfig()
        for n in range(out.shape[0]):
            check = check_pair(out[n], x.pair[0][n], x.pair[1][n], srgb=x.srgb, config=cfg)
            if check.inconsistent(cfg):
                _blend(out[n:n + 1], x.reference[n:n + 1], torch.tensor(check.share, dtype=out.dtype))
        return out


def _positive_px(arg: str) -> KeepMean:
    try:
        px = float(arg)
    except ValueError:
        px = 0.0
    if not px > 0:
        raise ValueError(f"keep_mean needs a radius in px above 0 (keep_mean:32), got {arg!r}")
    return KeepMean(px)


# step name -> (builder from the argument, what the argument is: None = takes none)
STEPS: dict[str, tuple] = {
    "keep_mean": (_positive_px, "PX"),
    "focus_gate": (lambda _: FocusGate(), None),
    "endorse": (Endorse, "ARCH.TAG"),
    "correction_gate": (lambda _: CorrectionGate(), None),
    "blur_gate": (BlurGate, "ARCH.TAG"),
    "focus_part": (FocusPart, "ARCH.TAG"),
    "blur_check": (lambda _: BlurCheck(), None),
}


def _known() -> str:
    return ", ".join(name if arg is None else f"{name}:{arg}" for name, (_, arg) in STEPS.items())


def post_step(text: str) -> PostStep:
    """One step from its ``NAME`` / ``NAME:ARGUMENT`` form; ModelError (one line, the valid forms)
    for an unknown name or a missing / unexpected argument."""
    name, sep, arg = str(text).partition(":")
    if name not in STEPS:
        raise ModelError(f"unknown post step {text!r}; known steps: {_known()}")
    build, wants = STEPS[name]
    if (wants is None) != (not sep) or (wants is not None and not arg):
        form = name if wants is None else f"{name}:{wants}"
        raise ModelError(f"post step {text!r}: write it as {form}")
    try:
        return build(arg)
    except ValueError as exc:
        raise ModelError(f"post step {text!r}: {exc}") from None


def parse_post(items: Iterable[str]) -> tuple[PostStep, ...]:
    """A weights entry's post list -> its steps, in order."""
    return tuple(post_step(t) for t in items)


def find_step(items: Iterable[str], name: str) -> PostStep | None:
    """The first step called ``name`` in a post list, or None."""
    return next((s for s in parse_post(items) if s.name == name), None)


@dataclass(frozen=True)
class Post:
    """A post list ready to run after one network: ``post(out, views)`` -> the image in [0, 1].

    ``views`` are the network's input views (one image or a DP pair, (N, C, H, W)); ``gates=False``
    runs only the steps that are not gates (a second opinion's raw view).
    """

    steps: tuple[PostStep, ...]
    srgb: bool = True
    device: str = "cpu"
    precision: str = "fp32"

    def _input(self, views: list[torch.Tensor], shape: torch.Size | None = None) -> PostInput:
        pair = (views[0], views[1]) if len(views) == 2 else None
        reference = torch.add(views[0].float(), views[1].float()).div_(2) if pair is not None else views[0]
        reference = reference.float() if shape is None else reference.float().expand(shape)
        return PostInput(reference, pair, self.srgb, self.device, self.precision)

    def precheck(self, views: list[torch.Tensor]) -> tuple[str, Post]:
        """Before the network: whether steps that read the input alone decline every item of
        ``views`` (:meth:`PostStep.declines`: the input is then the result, and the network need not
        run), said as why ("" where they do not), and the post list left to run after the network
        (without the steps already asked, unless they declined only part of a batch)."""
        askable = [s for s in self.steps if s.gate and type(s).declines is not PostStep.declines]
        if not askable:
            return "", self  # nothing to ask (a pair's steps all read the output)
        x = self._input(views)
        asked, declined, why = [], [False] * views[0].shape[0], []
        for step in (s for s in askable if s.runs_on(x)):
            with stage("post " + step.name):
                said = step.declines(x)
            declined = [a or b for a, b in zip(declined, said)]
            why += [f"{step.why_declined} ({step.name})"] if any(said) else []
            asked.append(step)
        if any(declined) and not all(declined):
            return "", self
        return "; ".join(why), dataclasses.replace(self, steps=tuple(s for s in self.steps if s not in asked))

    def __call__(self, out: torch.Tensor, views: list[torch.Tensor], gates: bool = True) -> torch.Tensor:
        x = self._input(views, out.shape)
        for step in self.steps:
            if (gates or not step.gate) and step.runs_on(x):
                with stage("post " + step.name):
                    out = step(out, x)
        return out.clamp_(0, 1)


def post_for(session: Deblurrer) -> Post:
    """The post steps of a session's weights (their manifest entry's ``post`` list; none for a file
    the user gives), set to run where the session runs."""
    loaded = session.loaded
    return Post(parse_post(loaded.post), srgb=loaded.space != "linear", device=str(session.device),
                precision=session.precision)
