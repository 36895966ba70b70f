"""Option bundles shared by every command: declared once, validated once.

A command declares a parameter typed with a bundle dataclass; :func:`with_bundles` replaces it,
for Typer, by the bundle's flat options (same names, help and checks in every command) and hands
the function the validated dataclass::

    @app.command("run")
    @with_bundles
    def run_command(
        inputs: list[Path] = typer.Argument(...),
        source: InputOptions = bundle(),                       # --black-level ... --camera
        out: OutputOptions = bundle(),                         # -o/--output ... -q/-v
        dev: DeviceOptions = bundle(omit=("tile_overlap",)),   # --device ... --tile
    ) -> None:
        ...

Each bundle's ``validate()`` runs before the command body and raises :class:`dpcli.errors.DpError`
(one line naming the option and its valid range, exit code 2). ``bundle(omit=..., defaults=...,
help=..., required=...)`` adapts a bundle to a command without renaming anything.
"""
from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

import typer

from dpcli.errors import DpError, InputError, OutputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from dpcli.io.pairs import RawOptions

BIT_DEPTHS = {"8": 8, "16": 16, "32f": 32, "32": 32}
OUTPUT_FORMATS = ("same", "png", "jpeg", "tiff")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MIN_TILE = 64  # below this the tile overlap dominates: a 7 px tile ran 16x slower than full frame


@dataclass(frozen=True)
class OptionDecl:
    """One flat CLI option of a bundle: its annotation, flags, default, help, metavar."""

    annotation: Any
    decls: tuple[str, ...]
    default: Any
    help: str
    metavar: str | None = None

    def parameter(self, name: str, default: Any = ..., help: str | None = None,
                  required: bool = False, panel: str | None = None) -> inspect.Parameter:
        value = self.default if default is ... else default
        kwargs: dict[str, Any] = {"help": help or self.help, "rich_help_panel": panel}
        if self.metavar is not None:
            kwargs["metavar"] = self.metavar
        option = typer.Option(... if required else value, *self.decls, **kwargs)
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                 annotation=self.annotation)


@dataclass(frozen=True)
class BundleSpec:
    """How one command uses a bundle: options left out, other defaults / help, required ones."""

    omit: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    help: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def bundle(*, omit: tuple[str, ...] | list[str] = (), defaults: dict[str, Any] | None = None,
           help: dict[str, str] | None = None, required: tuple[str, ...] | list[str] = ()) -> Any:
    """Default value of a bundle parameter (see the module docstring). Field names, not flags."""
    return BundleSpec(tuple(omit), dict(defaults or {}), dict(help or {}), tuple(required))


class _Bundle:
    """Mixin of the bundle dataclasses: their options table and the construction from flat values."""

    OPTIONS: ClassVar[dict[str, OptionDecl]]
    PANEL: ClassVar[str]  # heading of the bundle's options in --help

    def validate(self) -> Any:  # pragma: no cover - every bundle overrides it
        return self

    @classmethod
    def from_cli(cls, values: dict[str, Any]) -> Any:
        return cls(**values).validate()


# --------------------------------------------------------------------------------------------- input
@dataclass(frozen=True)
class InputOptions(_Bundle):
    """How input files are found and read: subfolders, raw levels, white sheets, encoding, view order,
    camera profile.

    ``srgb`` and ``swap_lr`` are None when the flag was not given: the command (or the camera
    profile, dpcli.cli.cameras) decides. ``camera`` is the profile name as typed. ``recursive``: input
    folders are searched with their subfolders, and outputs mirror the tree.
    """

    black_level: float | None = None
    white_level: float | None = None
    white_sheet: tuple[Path, Path] | None = None
    srgb: bool | None = None
    swap_lr: bool | None = None
    camera: str | None = None
    recursive: bool = False

    PANEL: ClassVar[str] = "Input"
    OPTIONS: ClassVar[dict[str, OptionDecl]] = {
        "recursive": OptionDecl(bool, ("--recursive", "-r"), False,
                                "Also look in the subfolders of input folders; outputs keep their relative "
                                "paths (input photos/, -o out: photos/2024/a.jpg -> out/2024/a.jpg)."),
        "black_level": OptionDecl(Optional[float], ("--black-level",), None,
                                  "Views are raw planes (counts): subtract this black level (Pixel 4: 1024).",
                                  "COUNTS"),
        "white_level": OptionDecl(Optional[float], ("--white-level",), None,
                                  "Raw planes: saturation level in counts (Pixel 4: 16383 = 2^14 - 1).",
                                  "COUNTS"),
        "white_sheet": OptionDecl(Optional[tuple[Path, Path]], ("--white-sheet",), None,
                                  "Raw planes: left and right view of a white-sheet capture, for the "
                                  "vignetting correction.", "LEFT RIGHT"),
        "srgb": OptionDecl(Optional[bool], ("--srgb/--linear",), None,
                           "Input values are sRGB-encoded / linear (default: from --camera, else image "
                           "files sRGB and raw planes linear)."),
        "swap_lr": OptionDecl(Optional[bool], ("--swap-lr/--no-swap-lr",), None,
                              "The file called left is the right view / is the left view (default: "
                              "the order --camera or dpdeblur synth output knows, else detected from "
                              "the pair)."),
        "camera": OptionDecl(Optional[str], ("--camera",), None,
                             "Camera profile: its raw levels, encoding and view order become the "
                             "defaults (dpdeblur cameras lists them).", "NAME"),
    }

    def validate(self) -> "InputOptions":
        if self.black_level is not None and not self.black_level >= 0:
            raise DpError(f"--black-level {self.black_level:g}: must be 0 or more (raw counts)")
        if self.white_level is not None:
            floor = self.black_level or 0.0
            if not self.white_level > floor:
                raise DpError(f"--white-level {self.white_level:g}: must be above the black level "
                              f"({floor:g})")
        if self.white_sheet is not None:
            if self.black_level is None and self.camera is None:
                raise DpError("--white-sheet needs raw planes: give --black-level (or a --camera profile)")
            for sheet in self.white_sheet:
                if not Path(sheet).is_file():
                    raise InputError("--white-sheet: no such file", sheet)
        if self.camera is not None and not self.camera.strip():
            raise DpError("--camera: give a profile name (dpdeblur cameras lists them)")
        return self

    @property
    def raw_planes(self) -> bool:
        """Views are raw sensor planes (a black level was given)."""
        return self.black_level is not None

    def raw_options(self) -> "RawOptions":
        """-> :class:`dpcli.io.pairs.RawOptions` (DP RAW files render linear with --linear)."""
        from dpcli.io.pairs import RawOptions

        left, right = self.white_sheet if self.white_sheet is not None else (None, None)
        return RawOptions(black_level=self.black_level, white_level=self.white_level, white_sheet_left=left,
                          white_sheet_right=right, output="linear" if self.srgb is False else "srgb")


# -------------------------------------------------------------------------------------------- output
@dataclass(frozen=True)
class OutputOptions(_Bundle):
    """Where and how results are written and reported.

    ``json``: the machine-readable summary goes to stdout (progress and messages to stderr).
    ``quiet``: only errors and the final line. ``verbose``: per-item lines and, for unexpected
    errors, the traceback.
    """

    folder: Path | None = None
    bit_depth: str = "input"
    format: str = "same"
    quality: int = 95
    overwrite: bool = False
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    report: bool = False

    PANEL: ClassVar[str] = "Output"
    OPTIONS: ClassVar[dict[str, OptionDecl]] = {
        "folder": OptionDecl(Optional[Path], ("--output", "-o"), None, "Output folder (created if missing).",
                             "FOLDER"),
        "bit_depth": OptionDecl(str, ("--bit-depth",), "input", "Output bit depth: input | 8 | 16 | 32f "
                                "(32-bit float TIFF).", "DEPTH"),
        "format": OptionDecl(str, ("--format",), "same", "Output image format: same (the input's own: PNG, "
                             "JPEG or TIFF; float data -> TIFF; raw files -> PNG) | png | jpeg | tiff. EXIF, "
                             "ICC profile and XMP go with it. Example: --format tiff.", "FORMAT"),
        "quality": OptionDecl(int, ("--quality",), 95, "JPEG quality, 1-100 (JPEG outputs only). Example: "
                              "--format jpeg --quality 90.", "Q"),
        "overwrite": OptionDecl(bool, ("--overwrite",), False, "Replace existing outputs (default: keep "
                                "those made the same way, refuse the others)."),
        "json": OptionDecl(bool, ("--json",), False, "Print a JSON summary on stdout (for scripts)."),
        "quiet": OptionDecl(bool, ("--quiet", "-q"), False, "Only errors and the final line."),
        "verbose": OptionDecl(bool, ("--verbose", "-v"), False, "A line per item; tracebacks of "
                              "unexpected errors."),
        "report": OptionDecl(bool, ("--report",), False, "Also write OUT/report.html: one page, offline, "
                             "per item the input and the output with a before/after slider, the defocus "
                             "map, method, L/R order, time (and scores with --gt)."),
    }

    def validate(self) -> "OutputOptions":
        if self.bit_depth != "input" and self.bit_depth not in BIT_DEPTHS:
            raise DpError(f"--bit-depth {self.bit_depth}: expected input, 8, 16 or 32f")
        if self.format not in OUTPUT_FORMATS:
            raise DpError(f"--format {self.format}: expected same, png, jpeg or tiff")
        if not 1 <= self.quality <= 100:
            raise DpError(f"--quality {self.quality}: must be 1 to 100")
        depth = BIT_DEPTHS.get(self.bit_depth)
        if depth == 32 and self.format in ("png", "jpeg"):
            raise DpError(f"--bit-depth {self.bit_depth}: {self.format.upper()} cannot hold float data; use "
                          "--format tiff")
        if depth == 16 and self.format == "jpeg":
            raise DpError(f"--bit-depth {self.bit_depth}: JPEG holds 8-bit data only; use --format png or tiff")
        if self.quiet and self.verbose:
            raise DpError("--quiet and --verbose contradict each other: give one")
        if self.folder is not None and self.folder.exists() and not self.folder.is_dir():
            raise OutputError("--output must be a folder; this is a file", self.folder)
        return self

    def depth(self, input_depth: int) -> int:
        """--bit-depth -> 8, 16 or 32 (float); ``input`` keeps the input's depth."""
        return input_depth if self.bit_depth == "input" else BIT_DEPTHS[self.bit_depth]

    def photo_path(self, name: str, source: Path | None) -> Path:
        """Where the image output ``name`` made from the file ``source`` goes: OUT/NAME.png|.jpg|.tiff by
        --format (``same``: the source's format; float data is known from the name: TIFF)."""
        from dpcli.io.images import FORMAT_SUFFIX, output_format

        fmt, _ = output_format(self.format, source, BIT_DEPTHS.get(self.bit_depth, 8))
        assert self.folder is not None
        return self.folder / f"{name}{FORMAT_SUFFIX[fmt]}"

    def write_photo(self, name: str, data: "np.ndarray", input_depth: int, *, source: Path | None,
                    stored: bool = False, protected: set[Path] | None = None) -> Path:
        """Write the image output ``name`` (float (C, H, W) in [0, 1]) at :meth:`photo_path`: the
        format, bit depth (the input's where the format holds it), quality and the metadata of
        ``source`` (EXIF, ICC profile, XMP). ``stored``: ``data`` is in the source's stored
        orientation (DP pairs are deblurred as the sensor recorded them) and is turned upright here.
        Replaces an older output (the output plan decided)."""
        from dpcli.io.images import output_format, write_image
        from dpcli.io.metadata import NO_META, orient_array, read_metadata

        _, depth = output_format(self.format, source, self.depth(input_depth))
        meta = read_metadata(source) if source is not None else NO_META
        if stored and meta.orientation != 1:
            data = orient_array(data.transpose(1, 2, 0), meta.orientation).transpose(2, 0, 1)
        return write_image(self.photo_path(name, source), data, depth, overwrite=True,  # type: ignore[arg-type]
                           protected=protected, meta=meta, quality=self.quality)

    @property
    def show_progress(self) -> bool:
        return not self.quiet and not self.json


# -------------------------------------------------------------------------------------------- device
@dataclass(frozen=True)
class DeviceOptions(_Bundle):
    """Where and how the computation runs. ``validate()`` resolves ``device`` ("auto" -> cpu,
    cuda or mps) so every command refuses an absent device or fp16 on the CPU the same way."""

    device: str = "auto"
    precision: str = "auto"
    threads: int = 0
    tile: int | None = None
    tile_overlap: int | None = None
    tta: bool | None = None  # None: where measured worth its time (dpcli.methods.tta.tta_worth)

    PANEL: ClassVar[str] = "Device"
    OPTIONS: ClassVar[dict[str, OptionDecl]] = {
        "device": OptionDecl(str, ("--device",), "auto", "auto | cpu | cuda | cuda:N | mps.", "DEVICE"),
        "precision": OptionDecl(str, ("--precision",), "auto", "auto (bf16 where measured harmless: shipped "
                                "networks deblurring on a CPU with AVX-512 BF16 or AMX; fp32 otherwise, training "
                                "included) | fp32 | bf16 (CPU or GPU) | fp16 (GPU only).", "PRECISION"),
        "threads": OptionDecl(int, ("--threads",), 0, "CPU threads (0 = all cores).", "N"),
        "tile": OptionDecl(Optional[int], ("--tile",), None, f"Tile size in px: 0 = one full-frame pass, "
                           f"else at least {MIN_TILE} (default: per method).", "PX"),
        "tile_overlap": OptionDecl(Optional[int], ("--tile-overlap",), None, "Overlap between tiles in px, "
                                   "below half the tile (default: per method).", "PX"),
        "tta": OptionDecl(Optional[bool], ("--tta/--no-tta",), None, "Test-time augmentation of networks: "
                          "DP pairs also run flipped vertically and mirrored with the views exchanged (4 "
                          "passes), single images rotated and mirrored (8 passes), outputs averaged; 4x / 8x "
                          "the time (default: only where measured worth it, e.g. 2 passes, as is and flipped, "
                          "for the DSLR BaMBNet)."),
    }

    def validate(self) -> "DeviceOptions":
        from dpcli.device import resolve_device

        if self.precision not in PRECISIONS:
            raise DpError(f"--precision {self.precision}: expected auto, fp32, bf16 or fp16")
        if self.threads < 0:
            raise DpError(f"--threads {self.threads}: must be 0 (all cores) or more")
        if self.tile is not None and self.tile != 0 and self.tile < MIN_TILE:
            raise DpError(f"--tile {self.tile}: must be 0 (one full-frame pass) or at least {MIN_TILE} px")
        if self.tile_overlap is not None:
            if self.tile_overlap < 0:
                raise DpError(f"--tile-overlap {self.tile_overlap}: must be 0 or more px")
            if self.tile and self.tile_overlap * 2 >= self.tile:
                raise DpError(f"--tile-overlap {self.tile_overlap}: must be below half of --tile "
                              f"({self.tile // 2} px)")
        device = str(resolve_device(self.device))
        if self.precision == "fp16" and device == "cpu":
            via = "" if self.device == "cpu" else f" (--device {self.device} found no GPU)"
            raise DpError(f"--precision fp16 needs a GPU; this run is on the CPU{via}: use bf16 or fp32")
        return replace(self, device=device)

    def torch_device(self) -> "torch.device":
        import torch

        return torch.device(self.device)

    def apply_threads(self) -> None:
        """Set torch's intra-op threads from --threads (0 keeps the default)."""
        from dpcli.device import set_threads

        set_threads(self.threads)


BUNDLES: tuple[type, ...] = (InputOptions, OutputOptions, DeviceOptions)


# ------------------------------------------------------------------------------------------ decorator
def with_bundles(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expand every parameter typed with a bundle into the bundle's options (for Typer) and call
    ``fn`` with the validated bundle dataclass in its place. Put it under ``@app.command``."""
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    params: list[inspect.Parameter] = []
    expanded: dict[str, tuple[type, dict[str, str], dict[str, Any]]] = {}
    for p in sig.parameters.values():
        cls = hints.get(p.name)
        if cls in BUNDLES:
            spec = p.default if isinstance(p.default, BundleSpec) else BundleSpec()
            unknown = set(spec.omit) | set(spec.defaults) | set(spec.help) | set(spec.required)
            unknown -= set(cls.OPTIONS)
            if unknown:
                raise TypeError(f"{fn.__name__}: {cls.__name__} has no option(s) {sorted(unknown)}")
            names = {}
            for fname, decl in cls.OPTIONS.items():
                if fname in spec.omit:
                    continue
                flat = f"{p.name}__{fname}"
                names[flat] = fname
                params.append(decl.parameter(flat, spec.defaults.get(fname, ...), spec.help.get(fname),
                                             fname in spec.required, cls.PANEL))
            # an omitted field keeps the command's default for it (e.g. a fixed bit depth), else the bundle's
            fixed = {k: spec.defaults[k] for k in spec.omit if k in spec.defaults}
            expanded[p.name] = (cls, names, fixed)
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation),
                                    kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        for pname, (cls, names, fixed) in expanded.items():
            values = {field_name: kwargs.pop(flat) for flat, field_name in names.items()}
            kwargs[pname] = cls.from_cli({**values, **fixed})
        return fn(**kwargs)

    # Typer reads the signature and annotations: those of the flat options, not of fn.
    del wrapper.__wrapped__
    wrapper.__signature__ = sig.replace(parameters=params, return_annotation=sig.return_annotation)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def bundle_fields(cls: type) -> list[str]:
    """Field names of a bundle dataclass (for docs and tests)."""
    return [f.name for f in fields(cls)]


def option_flags(cls: type) -> dict[str, tuple[str, ...]]:
    """Field -> CLI flags of a bundle (for docs and tests)."""
    return {name: decl.decls for name, decl in cls.OPTIONS.items()}


def parse_sets(items: list[str], flag: str = "--set") -> dict:
    """KEY=VALUE options (values read as JSON where they parse, else text) -> dict."""
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DpError(f"{flag} {item}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def renamed(value: Any, old_value: Any, flag: str, old_flag: str, default: Any = None) -> Any:
    """The value of a renamed option whose old spelling stays as a hidden alias for one release:
    the old one is taken with a one-line note; both given with different values is refused."""
    if old_value is None or (isinstance(old_value, (list, tuple)) and not old_value):
        return value
    if value != default and value != old_value:
        raise DpError(f"{old_flag} is the old name of {flag}: give one of them")
    from dpcli.cli.console import console_err

    console_err.print(f"[yellow]note:[/yellow] {old_flag} is now {flag} (the old name goes in the next release)",
                      highlight=False, soft_wrap=True)
    return old_value
