"""One item from file (or array) to pixels, as named stages: the one path every caller takes.

``dpdeblur run``, ``defocus-map``, ``zeroshot``, the Python API (:func:`dpcli.api.deblur`), the
benchmarks and the training evaluation all go through these stages, so a figure measured by one
is a figure of the others:

1. **read** (:func:`read_item`, or :meth:`Views.from_arrays` for arrays in memory): the views
   (or the one image), their bit depth and where they came from.
2. **encoding** (:func:`decide_encoding`): sRGB or linear, first rule that applies: the user's
   ``--srgb/--linear``; a camera profile's ``input.space``; raw planes (a black level): linear;
   a Dual Pixel RAW decode: as rendered (sRGB unless ``--linear``); image files: float (32-bit)
   and 16-bit GREY files linear, everything else sRGB.
3. **domain** (:func:`decide_domain`): the camera profile's, else ``phone`` for grey linear data
   and ``dslr`` otherwise (:mod:`dpcli.domains`).
4. **method** (:class:`MethodChooser`): the one named, else the best measured for the domain.
5. **orientation** (:func:`decide_orientation`), for pairs: the user's ``--swap-lr/--no-swap-lr``
   > the known order of the source (a camera profile's ``left_file``; a pair written by our
   renderer, ``dpdeblur synth``) > the data prior (cheapest evidence first: the global disparity,
   then the stage-1 side balance; :func:`dpcli.optics.orientation.detect_orientation`).
6. **kernels**: measured calibration kernels, put in our orientation from their own shape
   (:func:`load_calibration`), so they need no swap with the views.
7. **deblur** (:meth:`dpcli.methods.Method.deblur`: one conversion into the method's space and back).
8. **post**: a network's post steps run inside its method (:mod:`dpcli.methods.post`); with a focus
   gate and a source that ships its combined capture, the in-focus parts fall back to the capture
   (:func:`capture_fallback`); the image clipped to [0, 1].
9. **defocus map**: the method's own, with ``defocus=True``.

Every decision is recorded with what decided it in :attr:`Processed.provenance`, which the
summaries show.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dpcli.arrays import encode, to_numpy, to_tensor
from dpcli.domains import DOMAIN_WORDS, item_domain
from dpcli.errors import InputError
from dpcli.io.pairs import BadInput, PairInput, RawDPInput, RawOptions, SingleInput, load_pair, mean_view
from dpcli.methods import Method, default_method, get_method, list_methods, orient
from dpcli.optics.orientation import Orientation, orient_kernels, orient_views
from dpcli.timing import stage

__all__ = ["Source", "Options", "Views", "Processed", "MethodChooser", "read_item", "decide_encoding",
           "decide_domain", "decide_orientation", "known_order", "load_calibration", "process", "prepare_pair",
           "raw_count_note", "capture_fallback"]

# a grey 16-bit view whose values sit above a black level (darkest >= 256 counts, brightest
# <= 16383: 14-bit raw counts) was probably not preprocessed
_RAW_MIN_COUNTS, _RAW_MAX_COUNTS = 256, 16383


@dataclass(frozen=True)
class Source:
    """What is known about the input before its pixels are read.

    srgb: ``--srgb`` (True) / ``--linear`` (False), None when not given (a profile's space fills it
        in :func:`dpcli.cli.cameras.resolve_input`).
    swap_lr: ``--swap-lr`` / ``--no-swap-lr``, None when not given.
    raw: how raw files are read (black level: the files are raw planes).
    profile: the camera profile (:class:`dpcli.cameras.CameraProfile`) or None.
    focus: the orientation prior when no profile says ("front": content behind the focal plane).
    """

    srgb: bool | None = None
    swap_lr: bool | None = None
    raw: RawOptions = field(default_factory=RawOptions)
    profile: Any = None
    focus: str = "front"

    @property
    def focus_side(self) -> str:
        return self.profile.focus if self.profile is not None else self.focus


@dataclass
class Options:
    """What the user asked for, per run.

    method: ``auto`` | a method name | a :class:`dpcli.methods.Method` instance.
    weights, arch: a checkpoint for ``method`` (a family name, or ``auto`` = by what the item is).
    single: treat pairs as single images (their combined view).
    defocus: also return the defocus map of pairs.
    kernels: measured calibration kernels (left, right) in OUR orientation (:func:`load_calibration`).
    runtime: device, precision, tile, tile_overlap, coc_weights for the methods built here.
    """

    method: Any = "auto"
    weights: Path | None = None
    arch: str | None = None
    single: bool = False
    defocus: bool = False
    kernels: tuple | None = None
    runtime: dict = field(default_factory=dict)


@dataclass
class Views:
    """Stage 1's output: (C, H, W) float32 views in [0, 1] as given (``right`` None: one image).

    bit_depth: of the files (8 | 16 | 32), or None for arrays (their encoding must be given).
    kind: "files" | "raw planes" | "dual pixel raw" | "array": what the encoding rule reads.
    combined: the source's own combined capture, when it ships one (DPDD ``*_c``).
    order: the known view order of the source ("renderer" ...), or None (see :func:`known_order`).
    """

    left: np.ndarray
    right: np.ndarray | None = None
    bit_depth: int | None = None
    kind: str = "array"
    combined: np.ndarray | None = None
    order: str | None = None
    paths: tuple = ()

    @classmethod
    def from_arrays(cls, left, right=None, *, order: str | None = None) -> "Views":
        """Views of arrays in memory ((C, H, W), numpy or torch)."""
        return cls(to_numpy(left), None if right is None else to_numpy(right), order=order)

    @property
    def is_pair(self) -> bool:
        return self.right is not None


@dataclass
class Processed:
    """One item through the pipeline: the image in the input's encoding, clipped to [0, 1].

    provenance: stage -> "value (what decided)", e.g. {"encoding": "sRGB (8-bit file)",
        "orientation": "swapped (camera profile pixel4)"}.
    notes: things the user should know (shown in the summary); warnings: printed as they happen.
    """

    image: np.ndarray
    defocus: np.ndarray | None
    srgb: bool
    domain: str
    method: Method
    bit_depth: int | None
    orientation: Orientation | None = None
    provenance: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


# --- stage 1: read ---------------------------------------------------------------------------------

def read_item(item, source: Source, *, single: bool = False) -> Views:
    """Read an input item (:mod:`dpcli.io.pairs`) -> :class:`Views` (a pair's views even with
    ``single``: the combined view is formed after the encoding is decided)."""
    if isinstance(item, BadInput):
        raise item.error()
    if isinstance(item, SingleInput):
        from dpcli.io.images import read_image

        image = read_image(item.path)
        return Views(image.data, None, image.bit_depth, "files", paths=tuple(item.paths))
    if single and isinstance(item, RawDPInput):  # frame 0 is the ordinary capture; no second frame needed
        from dpcli.io.raw import read_raw_image

        image = read_raw_image(item.path, output=source.raw.output, demosaic=source.raw.demosaic)
        return Views(image, None, 16, "dual pixel raw", paths=tuple(item.paths))
    pair = load_pair(item, raw=source.raw, with_target=False)
    kind = ("dual pixel raw" if isinstance(item, RawDPInput) else
            "raw planes" if source.raw.black_level is not None else "files")
    return Views(pair.left, pair.right, pair.bit_depth, kind, pair.combined, order=_item_order(item),
                 paths=tuple(item.paths))


def _item_order(item) -> str | None:
    """'renderer' for a pair written by ``dpdeblur synth`` (its ``*_c/meta/NAME.json`` beside the
    views: the renderer wrote them in our order), else None."""
    split_l = item.left.parent.parent if isinstance(item, PairInput) else None
    if split_l is None or not split_l.name.lower().endswith("_l"):
        return None
    meta = split_l.parent / f"{split_l.name[:-2]}_c" / "meta" / f"{item.name}.json"
    try:
        return "renderer" if "layers" in json.loads(meta.read_text()) else None
    except (OSError, ValueError):
        return None


# --- stages 2 and 3: encoding and domain ----------------------------------------------------------

def decide_encoding(source: Source, views: Views) -> tuple[bool, str]:
    """(srgb, what decided) for these views (module docstring, stage 2)."""
    if source.srgb is not None:
        profile = source.profile
        if profile is not None and source.srgb == profile.srgb:
            return source.srgb, f"camera profile {profile.name}"
        return source.srgb, "user"
    if source.raw.black_level is not None or views.kind == "raw planes":
        return False, "raw planes"
    if views.kind == "dual pixel raw":
        return True, "Dual Pixel RAW rendered to sRGB"
    if views.bit_depth is None:
        raise InputError("the encoding of arrays must be given (srgb=True or False)")
    if views.bit_depth == 32:
        return _float_encoding(views)
    if views.left.shape[0] == 1 and views.bit_depth == 16:
        return False, "16-bit grey file"
    return True, f"{views.bit_depth}-bit {'grey' if views.left.shape[0] == 1 else 'colour'} file"


def _float_encoding(views: Views) -> tuple[bool, str]:
    """A float file: what a TIFF says of itself (ICC profile, photometric, colour-space tag), else
    linear light (a guess, which the second value says)."""
    from dpcli.io.metadata import tiff_encoding_hint

    path = views.paths[0] if views.paths else None
    if path is not None and Path(path).suffix.lower() in (".tif", ".tiff"):
        srgb, hint = tiff_encoding_hint(path)
        if srgb is not None:
            return srgb, f"float file, {hint}"
    return False, "float file, a guess: no colour hint in it"


def decide_domain(source: Source, channels: int, srgb: bool) -> tuple[str, str]:
    """(domain, what decided): the camera profile's, else from the data (:func:`dpcli.domains.item_domain`)."""
    if source.profile is not None:
        return source.profile.domain, f"camera profile {source.profile.name}"
    return item_domain(channels, srgb), "data"


def _label(srgb: bool) -> str:
    return "sRGB" if srgb else "linear"


# --- stage 4: method ---------------------------------------------------------------------------------

@dataclass
class MethodChooser:
    """Which method runs on an item: the one named, else the best measured for its domain (cached
    per domain and pair/single, so a folder builds each method once)."""

    model: Any = "auto"
    weights: Path | None = None
    arch: str | None = None
    runtime: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)

    @classmethod
    def of(cls, options: Options) -> "MethodChooser":
        """The chooser of ``options``; ``weights`` naming shipped weights (``arch.tag``) name the method."""
        from dpcli.models.registry import weights_by_name

        method, weights = options.method, options.weights
        if isinstance(method, str):
            method, weights = weights_by_name(method, weights)
        return cls(method, weights, options.arch, options.runtime)

    @property
    def named(self) -> bool:
        return not isinstance(self.model, str) or self.model != "auto" or self.weights is not None

    def for_item(self, domain: str, pair: bool) -> Method:
        if isinstance(self.model, Method):
            return self.model
        key = ("named" if self.named else domain, pair)
        if key in self.chosen:
            return self.chosen[key]
        if not self.named:
            method = default_method(domain, pair, self._candidates())
            if method is None:
                what = "DP pairs" if pair else "single images"
                raise InputError(f"no method for {what} of {DOMAIN_WORDS[domain]} is shipped yet"
                                 + ("" if pair else " (DP pairs deblur out of the box)"))
            method = get_method(method.name, **self.runtime)
        else:
            name = self.model  # "auto" with --weights: the family the file's keys say
            method = get_method(name, weights=self.weights, arch=self.arch, **self.runtime)
        self.chosen[key] = method
        return method

    def _candidates(self) -> list[Method]:
        if "_all" not in self.chosen:
            self.chosen["_all"] = list_methods()
        return self.chosen["_all"]

    def recipe(self) -> dict:
        """What decides the pixels: the named method and weights, or the defaults per domain."""
        if self.named:
            weights = None
            if self.weights is not None:
                from dpcli.models.registry import sha256_file

                weights = sha256_file(self.weights)
            name = self.model if isinstance(self.model, str) else self.model.name
            return {"method": name, "weights": weights, "arch": self.arch}
        table = {}
        for domain in DOMAIN_WORDS:
            for pair in (True, False):
                m = default_method(domain, pair, self._candidates())
                table[f"for {domain} {'pairs' if pair else 'single images'}"] = m.name if m else None
        return {"method": "auto", "auto": table}


# --- stage 8: post -----------------------------------------------------------------------------

def capture_fallback(image: np.ndarray, left: np.ndarray, right: np.ndarray, combined: np.ndarray, method: Method,
                     srgb: bool) -> np.ndarray | None:
    """A network with a focus gate (the post step ``focus_gate``, :class:`dpcli.methods.post.FocusGate`)
    keeps its correction where the pair is out of focus and falls back to the pair's mean view
    elsewhere; where the source ships its own combined capture (DPDD ``*_c``, a ``combined/``
    folder), fall back to that instead: there the photo is in focus and the capture is the photo.
    Computed in the network's space with the same gate: ``image + (1 - gate) (capture - mean)``
    (:meth:`~dpcli.methods.post.FocusGate.fall_back`). None when ``method`` has no focus gate
    (nothing changes). Views (C, H, W) in the input's encoding (``srgb``); returns the image in it."""
    from dpcli.methods.post import find_step

    session = getattr(method, "session", None)
    loaded = session().loaded if callable(session) else None
    gate = find_step(loaded.post, "focus_gate") if loaded is not None else None
    if gate is None:
        return None
    net_srgb = loaded.space != "linear"
    lt, rt, ct, out = (to_tensor(x if net_srgb == srgb else encode(x, to_srgb=net_srgb))[None]
                       for x in (left, right, combined, image))
    out = to_numpy(gate.fall_back(out, lt, rt, ct, srgb=net_srgb)[0].clamp(0, 1))
    return out if net_srgb == srgb else encode(out, to_srgb=srgb)


# --- stage 5: orientation -----------------------------------------------------------------------

def known_order(source: Source, views: Views) -> tuple[bool, str] | None:
    """(swapped, what knows it) when the source knows its view order, else None: a camera
    profile's ``left_file`` (left | right), or a pair our renderer wrote (as given)."""
    if source.profile is not None and source.profile.swap_hint is not None:
        return bool(source.profile.swap_hint), f"camera profile {source.profile.name}"
    if views.order == "renderer":
        return False, "written by dpdeblur synth"
    return None


def decide_orientation(views: Views, srgb: bool, source: Source) -> Orientation:
    """Whether the pair's views must be exchanged: the user's flag > the known order of the source
    (:func:`known_order`) > the data prior (disparity, then the stage-1 side balance). Nothing is
    measured when the user or the source decides."""
    if source.swap_lr is not None:
        return Orientation(bool(source.swap_lr), "user")
    known = known_order(source, views)
    if known is not None:
        return Orientation(known[0], known[1])
    return orient(views.left, views.right, srgb=srgb, focus=source.focus_side)


# --- stage 6: kernels ---------------------------------------------------------------------------

def load_calibration(path: Path | None, focus: str = "front"):
    """Measured kernels of a calibration folder (``blur_kernels_{left,right}.npy`` in it or in its
    ``calibration/`` subfolder), re-centred, in OUR orientation read from their own centroids
    (:func:`dpcli.optics.orientation.orient_kernels`), so they fit the views whichever way either
    was named. None when no folder is given."""
    if path is None:
        return None
    from dpcli.classical import load_kernels_dir

    kl, kr = load_kernels_dir(path)
    kl, kr, _ = orient_kernels(kl.numpy(), kr.numpy(), "back" if focus == "back" else "front")
    return kl, kr


# --- the whole item ---------------------------------------------------------------------------------

def raw_count_note(view: np.ndarray, bit_depth: int | None) -> bool:
    """True for a grey 16-bit view whose values sit above a black level, within 14-bit counts."""
    if bit_depth != 16 or view.shape[0] != 1:
        return False
    lo, hi = float(view.min()) * 65535, float(view.max()) * 65535
    return lo >= _RAW_MIN_COUNTS and hi <= _RAW_MAX_COUNTS + 0.5


@dataclass
class PreparedPair:
    """A pair after stages 1-3 and 5: views in OUR orientation, with the decisions made."""

    left: np.ndarray
    right: np.ndarray
    srgb: bool
    domain: str
    orientation: Orientation
    bit_depth: int | None
    provenance: dict


def prepare_pair(item_or_views, source: Source) -> PreparedPair:
    """Stages 1, 2, 3 and 5 of a pair (what ``defocus-map`` needs)."""
    views = item_or_views if isinstance(item_or_views, Views) else read_item(item_or_views, source)
    if not views.is_pair:
        raise InputError("a single image, not a dual-pixel pair (NAME_L/NAME_R, left/ + right/, DPDD "
                         "or a Dual Pixel RAW file)", views.paths[0] if views.paths else None)
    srgb, enc_by = decide_encoding(source, views)
    domain, dom_by = decide_domain(source, views.left.shape[0], srgb)
    o = decide_orientation(views, srgb, source)
    left, right, _ = orient_views(views.left, views.right, o)
    return PreparedPair(left, right, srgb, domain, o, views.bit_depth,
                        {"encoding": f"{_label(srgb)} ({enc_by})", "domain": f"{domain} ({dom_by})",
                         "orientation": o.describe()})


def process(item_or_views, source: Source | None = None, options: Options | None = None,
            chooser: MethodChooser | None = None) -> Processed:
    """One item (an input item of :mod:`dpcli.io.pairs`, or :class:`Views`) through every stage.

    Raises:
        InputError: the item cannot be read, or the chosen method cannot take it.
    """
    source = source or Source()
    options = options or Options()
    chooser = chooser or MethodChooser.of(options)
    single = options.single
    with stage("read"):
        views = item_or_views if isinstance(item_or_views, Views) else read_item(item_or_views, source, single=single)
    where = views.paths[0] if views.paths else None
    as_pair = views.is_pair and not single
    srgb, enc_by = decide_encoding(source, views)
    notes: list[str] = []
    if enc_by.startswith("float file"):  # shown in the summary: a wrong guess costs dB (issue 37)
        why = enc_by.split(", ", 1)[1]
        notes.append(f"float file read as sRGB-encoded ({why}), --linear if it is not" if srgb else
                     f"float file read as linear light ({why}), --srgb if it is sRGB-encoded")
    provenance = {"encoding": f"{_label(srgb)} ({enc_by})"}
    if not as_pair and views.is_pair:  # --single: the combined view, averaged in linear light
        image = views.combined if views.combined is not None else mean_view(views.left, views.right, srgb=srgb)
        views = Views(image, None, views.bit_depth, views.kind, paths=views.paths)
    domain, dom_by = decide_domain(source, views.left.shape[0], srgb)
    provenance["domain"] = f"{domain} ({dom_by})"
    method = chooser.for_item(domain, as_pair)
    provenance["method"] = f"{method.name} ({'named' if chooser.named else 'best measured for ' + domain})"
    orientation = None
    if as_pair:
        if not method.needs_pair:
            raise InputError(f"--method {method.name} deblurs single images; add --single to run it on the "
                             "pairs' combined views")
        if source.raw.black_level is not None and source.raw.white_sheet_left is None:
            notes.append("raw planes without vignetting correction (--white-sheet LEFT RIGHT)")
        if source.raw.black_level is None and raw_count_note(views.left, views.bit_depth):
            notes.append("the values look like raw counts above a black level: --camera pixel4 or --black-level")
        with stage("orientation"):
            orientation = decide_orientation(views, srgb, source)
            left, right, _ = orient_views(views.left, views.right, orientation)
        provenance["orientation"] = orientation.describe()
        with stage("deblur"):
            result = method.deblur(left, right, srgb=srgb, kernels=options.kernels, defocus=options.defocus,
                                   focus=source.focus_side)
        if views.combined is not None and views.combined.shape == views.left.shape:
            with stage("capture fallback"):
                gated = capture_fallback(result.image, left, right, views.combined,
                                         method.handled_by(result.info), srgb)
            if gated is not None:
                result.image = gated
                provenance["post"] = "focus gate falls back to the source's combined capture"
    else:
        if method.needs_pair:
            raise InputError(f"a single image; --method {method.name} needs dual-pixel pairs "
                             "(NAME_L/NAME_R, left/ + right/, DPDD or Dual Pixel RAW)", where)
        with stage("deblur"):
            result = method.deblur(views.left, None, srgb=srgb)
    warnings = []
    if domain not in method.domains:
        warnings.append(f"{method.name} is meant for {' and '.join(DOMAIN_WORDS[d] for d in method.domains)}, "
                        f"not {DOMAIN_WORDS[domain]}")
        notes.append(warnings[-1])
    for key in (("defocus_source", "note") if options.defocus and as_pair else ("note",)):
        if result.info.get(key):
            notes.append(result.info[key] if key == "note" else f"{key.replace('_', ' ')}: {result.info[key]}")
    info = dict(result.info, method=method.name)
    if orientation is not None:
        info["orientation"] = orientation.describe()
    return Processed(np.clip(result.image, 0, 1), result.defocus if as_pair else None, srgb, domain, method,
                     views.bit_depth, orientation, provenance, notes, warnings, info)
