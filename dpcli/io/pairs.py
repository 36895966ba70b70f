"""Find dual-pixel pairs and single images in any mix of files and folders, and load them.

Layouts (docs/CONVENTIONS.md "Folder layouts we read"):

- DPDD: ``<split>_l/source/NAME_L.*`` + ``<split>_r/source/NAME_R.*``, with
  ``<split>_c/source/NAME.*`` as combined and ``<split>_c/target/NAME.*`` as ground truth. A
  ``<split>_c`` without ``_l``/``_r`` gives single images with their targets.
- ``NAME_L``/``NAME_R`` and ``NAME_left``/``NAME_right`` (any case, ``_`` or ``-``) in one folder;
  a plain ``NAME.*`` beside such a pair is its combined image.
- ``left/`` + ``right/`` subfolders with equal file names (optional ``combined/`` or ``center/``
  and ``target/`` or ``gt/`` beside them); ``source/`` + ``target/`` for single images.
- ``.CR2``/``.DNG`` files: Canon Dual Pixel RAW (both views in one file).
- Everything else that is an image is a single image.

Problems found while looking (a lone ``_L``, an unsupported file named on the command line) become
:class:`BadInput` items that fail with an :class:`InputError` when loaded, so a folder run goes on
past them and lists them at the end. Missing paths and folders without images raise at once.

With ``recursive``, every subfolder that is not part of a layout above is searched too, and an item's
name carries its folder's path relative to the input folder (``pairs/scene_a``), so outputs named
after items mirror the input tree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np

from dpcli.errors import InputError
from dpcli.io.images import IMAGE_SUFFIXES, read_image

RAW_SUFFIXES = {".cr2", ".dng"}
_SIDE_RE = re.compile(r"^(?P<base>.+?)[_-](?P<side>l|r|left|right|view[_-]?a|view[_-]?b)$", re.IGNORECASE)
_DPDD_RE = re.compile(r"^(?P<split>.+)_(?P<side>[lrc])$", re.IGNORECASE)
_COMBINED_DIRS = ("combined", "center", "centre", "c")
_TARGET_DIRS = ("target", "gt", "ground_truth", "groundtruth")


@dataclass
class PairInput:
    """A DP pair stored as two image files (output name: ``name``, e.g. ``NAME`` for ``NAME_L``)."""

    name: str
    left: Path
    right: Path
    combined: Path | None = None
    target: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.left, self.right, self.combined, self.target) if p is not None]


@dataclass
class SingleInput:
    """One ordinary image (with its ground truth when the layout has one)."""

    name: str
    path: Path
    target: Path | None = None
    left: None = field(default=None, init=False, repr=False)
    right: None = field(default=None, init=False, repr=False)
    combined: None = field(default=None, init=False, repr=False)

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.path, self.target) if p is not None]


@dataclass
class RawDPInput:
    """A raw file holding both DP views (Canon Dual Pixel RAW .CR2, or a two-frame .DNG)."""

    name: str
    path: Path
    target: Path | None = None
    left: Path = field(init=False, repr=False)
    right: Path = field(init=False, repr=False)
    combined: Path = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.left = self.right = self.combined = self.path  # all three come from this one file

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.path, self.target) if p is not None]


@dataclass
class BadInput:
    """Something found while looking that cannot be used; loading it raises :class:`InputError`."""

    name: str
    path: Path
    message: str
    left: None = field(default=None, init=False, repr=False)
    right: None = field(default=None, init=False, repr=False)
    combined: None = field(default=None, init=False, repr=False)
    target: None = field(default=None, init=False, repr=False)

    @property
    def paths(self) -> list[Path]:
        return [self.path]

    def error(self) -> InputError:
        return InputError(self.message, self.path)


InputItem = Union[PairInput, SingleInput, RawDPInput, BadInput]


def is_pair(item: InputItem) -> bool:
    """True for items that carry two views (image pair or DP raw)."""
    return isinstance(item, (PairInput, RawDPInput))


def photo_source(item: InputItem) -> Path:
    """The file whose format and metadata (EXIF, ICC profile, XMP) an item's deblurred image takes:
    the image itself, a pair's combined image where it ships one, else its left view."""
    if isinstance(item, PairInput):
        return item.combined or item.left
    return item.path


def input_paths(items: Sequence[InputItem]) -> set[Path]:
    """Every file the items read: pass as ``protected`` to write_image so no input is overwritten."""
    return {p for item in items for p in item.paths}


# --------------------------------------------------------------------------------------- discovery
def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if path.name.startswith("."):
        return "hidden"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in RAW_SUFFIXES:
        return "raw"
    return "other"


def _side_of(path: Path) -> tuple[str, str] | None:
    """``NAME_L.png`` -> ("NAME", "L"); None for a name without a side suffix. ``NAME_view_a`` /
    ``NAME_view_b`` (the DPDD authors' published views, order not recorded) are taken as L / R as
    named; the commands that read pairs decide the order from the data."""
    match = _SIDE_RE.match(path.stem)
    if not match:
        return None
    side = match["side"].lower().replace("-", "_")
    return match["base"], "L" if side in ("l", "left", "view_a", "viewa") else "R"


def _subdir(folder: Path, names: Sequence[str]) -> Path | None:
    """First child folder of ``folder`` whose name is one of ``names`` (any case)."""
    if not folder.is_dir():
        return None
    wanted = [n.lower() for n in names]
    found = {d.name.lower(): d for d in folder.iterdir() if d.is_dir()}
    for name in wanted:
        if name in found:
            return found[name]
    return None


def _images_in(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and _kind(p) == "image")


def _by_stem(files: Sequence[Path], prefer: str = "") -> dict[str, Path]:
    """stem -> file; when a stem has several files the one with suffix ``prefer`` (else the first) wins."""
    table: dict[str, Path] = {}
    for path in files:
        if path.stem not in table or path.suffix.lower() == prefer:
            table[path.stem] = path
    return table


def _match(folder: Path | None, stem: str, prefer: str = "") -> Path | None:
    return _by_stem(_images_in(folder), prefer).get(stem)


def _dpdd(folder: Path) -> list[InputItem] | None:
    """Items of a DPDD root (``*_l``, ``*_r``, ``*_c`` split folders); None when it is not one."""
    splits: dict[str, dict[str, Path]] = {}
    for child in sorted(folder.iterdir()):
        match = _DPDD_RE.match(child.name)
        if child.is_dir() and match and _subdir(child, ["source"]) is not None:
            splits.setdefault(match["split"], {})[match["side"].lower()] = child
    if not splits:
        return None
    items: list[InputItem] = []
    for split, sides in sorted(splits.items()):
        c_source = _subdir(sides["c"], ["source"]) if "c" in sides else None
        c_target = _subdir(sides["c"], ["target"]) if "c" in sides else None
        if "l" in sides or "r" in sides:
            items += _dpdd_pairs(split, sides, c_source, c_target)
        else:
            items += _source_target(_subdir(sides["c"], ["source"]), c_target)
    return items


def _dpdd_pairs(split: str, sides: dict[str, Path], c_source: Path | None,
                c_target: Path | None) -> list[InputItem]:
    views: dict[str, dict[str, Path]] = {"L": {}, "R": {}}
    for key in ("l", "r"):
        for path in _images_in(_subdir(sides[key], ["source"]) if key in sides else None):
            parsed = _side_of(path)
            base, side = parsed if parsed else (path.stem, key.upper())
            views[side][base] = path
    combined_by_stem, target_by_stem = _by_stem(_images_in(c_source)), _by_stem(_images_in(c_target))
    items: list[InputItem] = []
    for base in sorted(set(views["L"]) | set(views["R"])):
        left, right = views["L"].get(base), views["R"].get(base)
        if left is None or right is None:
            have = left or right
            missing = f"{split}_{'r' if right is None else 'l'}/source/{base}_{'R' if right is None else 'L'}.*"
            items.append(BadInput(base, have, f"lone {'left' if right is None else 'right'} view: no {missing}"))
            continue
        items.append(PairInput(base, left, right, combined_by_stem.get(base), target_by_stem.get(base)))
    return items


def _source_target(source: Path | None, target: Path | None) -> list[InputItem]:
    targets = _by_stem(_images_in(target))
    return [SingleInput(p.stem, p, targets.get(p.stem)) for p in _images_in(source)]


def _left_right_dirs(folder: Path) -> list[InputItem] | None:
    """Items of a folder with ``left/`` and ``right/`` subfolders; None when it has not both."""
    left_dir, right_dir = _subdir(folder, ["left"]), _subdir(folder, ["right"])
    if left_dir is None or right_dir is None:
        return None
    combined_dir, target_dir = _subdir(folder, _COMBINED_DIRS), _subdir(folder, _TARGET_DIRS)
    lefts, rights = _by_stem(_images_in(left_dir)), _by_stem(_images_in(right_dir))
    combined, targets = _by_stem(_images_in(combined_dir)), _by_stem(_images_in(target_dir))
    items: list[InputItem] = []
    for stem in sorted(set(lefts) | set(rights)):
        left, right = lefts.get(stem), rights.get(stem)
        if left is None or right is None:
            have = left or right
            other = "right" if right is None else "left"
            items.append(BadInput(stem, have, f"no file named {stem}.* in {other}/ to pair with it"))
            continue
        items.append(PairInput(stem, left, right, combined.get(stem), targets.get(stem)))
    return items


def _flat(files: Sequence[Path], explicit: bool) -> list[InputItem]:
    """Group files of ONE folder (or files named on the command line) into pairs and singles."""
    items: list[InputItem] = []
    sided: dict[str, dict[str, Path]] = {}
    plain: list[Path] = []
    for path in files:
        kind = _kind(path)
        if kind == "raw":
            items.append(RawDPInput(path.stem, path))
        elif kind == "image":
            parsed = _side_of(path)
            if parsed:
                sided.setdefault(parsed[0], {}).setdefault(parsed[1], path)
            else:
                plain.append(path)
        elif explicit:
            items.append(BadInput(path.name, path, f"unsupported file type '{path.suffix or path.name}' "
                                  "(use PNG, TIFF, JPEG, or .CR2/.DNG raw)"))
    plain_by_stem = _by_stem(plain)
    used: set[Path] = set()
    if explicit:  # a file named on the command line inside left/ (right/) pairs with right/ (left/)
        for path in plain:
            pair = _left_right_sibling(path)
            if pair is not None:
                items.append(pair)
                used.add(path)
    for base, views in sorted(sided.items()):
        left, right = views.get("L"), views.get("R")
        if left is None or right is None:
            have = left or right
            assert have is not None
            partner = _partner_on_disk(have, "R" if right is None else "L")
            if partner is None:
                want = "right (NAME_R / NAME_right)" if right is None else "left (NAME_L / NAME_left)"
                items.append(BadInput(have.stem, have, f"lone {'left' if right is None else 'right'} view: "
                                      f"no {want} file for {base} (an ordinary photo? rename it without "
                                      f"the '{have.stem[len(base):]}' ending)"))
                continue
            left, right = (have, partner) if right is None else (partner, have)
        combined = plain_by_stem.get(base) or (_match(left.parent, base, left.suffix.lower()) if explicit else None)
        if combined is not None:
            used.add(combined)
        items.append(PairInput(base, left, right, combined))
    items += [SingleInput(p.stem, p) for p in plain if p not in used]
    return items


def _left_right_sibling(path: Path) -> PairInput | None:
    """``left/NAME`` (or ``right/NAME``) with ``NAME`` in the sibling folder -> the pair, else None."""
    side = path.parent.name.lower()
    if side not in ("left", "right"):
        return None
    other = _subdir(path.parent.parent, ["right" if side == "left" else "left"])
    partner = _match(other, path.stem, path.suffix.lower())
    if partner is None:
        return None
    left, right = (path, partner) if side == "left" else (partner, path)
    root = path.parent.parent
    return PairInput(path.stem, left, right, _match(_subdir(root, _COMBINED_DIRS), path.stem),
                     _match(_subdir(root, _TARGET_DIRS), path.stem))


def _partner_on_disk(path: Path, side: str) -> Path | None:
    """The other view of ``path`` in its folder, or in the DPDD ``*_r/source`` (``*_l``) sibling."""
    parsed = _side_of(path)
    if parsed is None:
        return None
    base = parsed[0]
    candidates = [p for p in _images_in(path.parent) if _side_of(p) == (base, side)]
    source = path.parent
    split = source.parent
    match = _DPDD_RE.match(split.name)
    if not candidates and source.name.lower() == "source" and match:
        other = split.parent / f"{match['split']}_{side.lower()}" / "source"
        if not other.is_dir():
            other = split.parent / f"{match['split']}_{side}" / "source"
        candidates = [p for p in _images_in(other) if _side_of(p) == (base, side)]
    if not candidates:
        return None
    same = [p for p in candidates if p.suffix.lower() == path.suffix.lower()]
    return (same or candidates)[0]


def _folder(folder: Path) -> list[InputItem]:
    for layout in (_dpdd, _left_right_dirs):
        items = layout(folder)
        if items is not None:
            return items + _flat(sorted(p for p in folder.iterdir() if p.is_file()), explicit=False)
    source, target = _subdir(folder, ["source"]), _subdir(folder, _TARGET_DIRS)
    if source is not None and target is not None:
        return _source_target(source, target) + _flat(sorted(p for p in folder.iterdir() if p.is_file()), False)
    return _flat(sorted(p for p in folder.iterdir() if p.is_file()), explicit=False)


def _unique_names(items: list[InputItem]) -> list[InputItem]:
    """Make output names unique: a clash gets its parent folder's name as prefix."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name] = seen.get(item.name, 0) + 1
    for item in items:
        if seen[item.name] > 1:
            anchor = item.path if isinstance(item, (SingleInput, RawDPInput, BadInput)) else item.left
            folder = anchor.parent
            if folder.name.lower() in ("source", "left"):  # DPDD <split>_l/source, or left/
                folder = folder.parent
            split = _DPDD_RE.match(folder.name)
            item.name = f"{split['split'] if split else folder.name}_{item.name}"
    return items


def _layout_dirs(folder: Path, items: Sequence[InputItem]) -> set[Path]:
    """Subfolders of ``folder`` that its items read from (``left/``, ``*_l/source``...) and the layout
    folders beside them (``target/``, ``gt/``...): a recursive search does not enter them again."""
    used: set[Path] = set()
    for item in items:
        for path in item.paths:
            for parent in path.parents:
                if parent == folder:
                    break
                used.add(parent)
    if used:  # a layout matched: its ground-truth / combined folders are not photos to deblur
        names = {*_COMBINED_DIRS, *_TARGET_DIRS, "left", "right", "source"}
        used |= {d for d in folder.iterdir() if d.is_dir() and (d.name.lower() in names or _DPDD_RE.match(d.name))}
    return used


def _tree(root: Path, folder: Path, skip: set[Path]) -> list[InputItem]:
    """Items of ``folder`` and of its subfolders (not those of its layout, hidden or excluded ones),
    named by their folder's path relative to ``root``."""
    items = [i for i in _folder(folder) if not _excluded(i, skip)]
    prefix = folder.relative_to(root).as_posix()
    if prefix != ".":
        for item in items:
            item.name = f"{prefix}/{item.name}"
    inner = _layout_dirs(folder, items)
    for child in sorted(folder.iterdir()):
        if _searchable(child, skip) and child not in inner:
            items += _tree(root, child, skip)
    return items


def _searchable(child: Path, skip: set[Path]) -> bool:
    """A subfolder a recursive search enters: not hidden, excluded, a link, or ground truth (target/...)."""
    return (child.is_dir() and not child.name.startswith(".") and not child.is_symlink()
            and child.name.lower() not in _TARGET_DIRS and child.resolve() not in skip)


def _subfolders_with_images(folder: Path, skip: set[Path], limit: int = 3) -> list[str]:
    """Names of the first subfolders (``pairs/``) a recursive search would find images in."""
    found = []
    for child in sorted(folder.iterdir()):
        if _searchable(child, skip):
            if any(p.is_file() and _kind(p) in ("image", "raw") for p in child.rglob("*")):
                found.append(f"{child.name}/")
                if len(found) == limit:
                    break
    return found


def left_in_subfolders(paths: Sequence[str | Path], *, exclude: Sequence[str | Path] = ()) -> tuple[int, list[str]]:
    """What a search without ``recursive`` leaves out of the folders in ``paths``: (how many items
    their subfolders hold, the first few of those subfolders, ``pairs/``). A pair counts once."""
    skip = {Path(p).resolve() for p in exclude}
    count, where = 0, []
    for raw in paths:
        folder = Path(raw)
        if not folder.is_dir() or folder.resolve() in skip:
            continue
        top = {item.name for item in _folder(folder) if not _excluded(item, skip)}
        deeper = [item.name for item in _tree(folder, folder, skip) if item.name not in top]
        count += len(deeper)
        for name in deeper:
            sub = name.split("/", 1)[0] + "/"
            if sub not in where and len(where) < 3:
                where.append(sub)
    return count, where


def named_pair(left: str | Path, right: str | Path) -> PairInput:
    """Two files of any name as one DP pair (``run --pair LEFT RIGHT``), named after LEFT without its
    view suffix (``IMG_7_left.jpg`` -> ``IMG_7``; a name without one is kept: ``a.png`` -> ``a``).

    Raises:
        InputError: a file is missing, a folder, or not an image file.
    """
    left, right = Path(left), Path(right)
    for path in (left, right):
        if not path.exists():
            raise InputError("no such file (--pair LEFT RIGHT)", path)
        if not path.is_file() or _kind(path) != "image":
            raise InputError("--pair LEFT RIGHT takes two image files (PNG, TIFF, JPEG)", path)
    parsed = _side_of(left)
    return PairInput(parsed[0] if parsed else left.stem, left, right)


def discover_inputs(paths: Sequence[str | Path], *, exclude: Sequence[str | Path] = (),
                    recursive: bool = False, pairs: Sequence[tuple[str | Path, str | Path]] = ()) -> list[InputItem]:
    """Files and folders from the command line -> pairs, single images, raw DP files and bad items.

    Args:
        paths: any mix of image files, raw files and folders (folders are searched for the layouts in
            the module docstring; their other subfolders only with ``recursive``).
        exclude: folders or files to leave out (e.g. the output folder inside an input folder).
        recursive: search subfolders too (not ground-truth ones: target/, gt/...); item names carry
            the relative folder (``pairs/scene_a``).
        pairs: (left, right) files taken as one pair each, whatever their names (:func:`named_pair`).

    Raises:
        InputError: a path does not exist, or a folder holds no image at all (saying which of its
            subfolders do, without ``recursive``).
    """
    if not paths and not pairs:
        raise InputError("no input given")
    skip = {Path(p).resolve() for p in exclude}
    items: list[InputItem] = [named_pair(left, right) for left, right in pairs]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError("no such file or folder", path)
        if path.is_dir():
            if path.resolve() in skip:
                raise InputError("is both the input and the output folder (-o): outputs would mix with the "
                                 "inputs; choose another output folder, e.g. -o " + str(path / "deblurred"), path)
            if recursive:
                found = _tree(path, path, skip)
            else:
                found = [i for i in _folder(path) if not _excluded(i, skip)]
            if not found:
                inside = [] if recursive else _subfolders_with_images(path, skip)
                if inside:
                    raise InputError(f"no images in {path.as_posix().rstrip('/')}/; its subfolders "
                                     f"{', '.join(inside)} hold some: add --recursive")
                what = "this folder or its subfolders" if recursive else "this folder"
                raise InputError(f"no images found in {what} (PNG, TIFF, JPEG, .CR2/.DNG)", path)
            items += found
        else:
            files.append(path)
    # Files named on the command line are grouped with each other (NAME_L + NAME_R -> one pair).
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    for group in by_folder.values():
        items += _flat(group, explicit=True)
    return _unique_names(_dedupe(items))


def probe_items(items: Sequence[InputItem]) -> list[InputItem]:
    """Check every item's files from their headers (cheap: nothing is decoded) and replace the
    unusable ones by :class:`BadInput`, so a corrupt, empty or non-image file is reported as such
    before any method is chosen or loaded; the views of a pair must have one size."""
    from dpcli.io.images import probe_image

    checked: list[InputItem] = []
    for item in items:
        if isinstance(item, BadInput):
            checked.append(item)
            continue
        try:
            if isinstance(item, RawDPInput):
                if not item.path.is_file() or item.path.stat().st_size == 0:
                    raise InputError("empty or missing raw file", item.path)
                if item.target is not None:
                    probe_image(item.target)
            elif isinstance(item, PairInput):
                sizes = {p: probe_image(p) for p in item.paths}
                ref = sizes[item.left]
                for path, size in sizes.items():
                    if size != ref:
                        raise InputError(f"size mismatch: {item.left.name} is {ref[1]}x{ref[0]} but {path.name} "
                                         f"is {size[1]}x{size[0]}", path)
            else:
                for path in item.paths:
                    probe_image(path)
        except InputError as exc:
            checked.append(BadInput(item.name, exc.path or item.paths[0], exc.message))
            continue
        checked.append(item)
    return checked


def _excluded(item: InputItem, skip: set[Path]) -> bool:
    return any(p.resolve() == s or s in p.resolve().parents for p in item.paths for s in skip)


def _dedupe(items: list[InputItem]) -> list[InputItem]:
    """Drop repeats (a file named twice, or a folder and a file inside it)."""
    seen: set[tuple] = set()
    out = []
    for item in items:
        key = (type(item).__name__, *(p.resolve() for p in item.paths[:2]))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# ------------------------------------------------------------------------------------------ loading
@dataclass
class RawOptions:
    """How to read raw data.

    ``black_level`` set -> the two files of a :class:`PairInput` are Pixel-style raw planes (counts),
    preprocessed by :func:`dpcli.io.raw.preprocess_planes`. ``output`` and ``demosaic`` apply to
    Dual Pixel RAW files (rawpy).
    """

    black_level: float | None = None
    white_level: float | None = None
    white_sheet_left: Path | None = None
    white_sheet_right: Path | None = None
    output: str = "srgb"  # linear | srgb
    demosaic: str = "linear"


@dataclass
class LoadedPair:
    """Decoded views float32 (C, H, W); ``combined``/``target`` when the input ships them.

    ``valid`` (H, W) bool marks pixels with trustworthy data (raw DP: False where frame 0 clips).
    Unpacks as ``left, right = load_pair(item)``.
    """

    left: np.ndarray
    right: np.ndarray
    combined: np.ndarray | None = None
    target: np.ndarray | None = None
    bit_depth: int = 16
    valid: np.ndarray | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.left
        yield self.right


def _check_size(reference: np.ndarray, other: np.ndarray, ref_path: Path, other_path: Path, what: str) -> None:
    if reference.shape[1:] != other.shape[1:]:
        (h1, w1), (h2, w2) = reference.shape[1:], other.shape[1:]
        raise InputError(f"size mismatch: {ref_path.name} is {w1}x{h1} but {what} {other_path.name} is {w2}x{h2}",
                         other_path)


def load_pair(item: InputItem, swap_lr: bool = False, raw: RawOptions | None = None, *,
              with_target: bool = True) -> LoadedPair:
    """Read a pair item -> :class:`LoadedPair` (left, right float32 (C, H, W), combined, target).

    Every file of a pair is read as stored, without its EXIF orientation: DP disparity is horizontal
    on the sensor, so methods see the views the way it was recorded and the deblurred image is
    turned upright when written (``OutputOptions.write_photo(..., stored=True)``).

    Raises:
        InputError: a bad item, an unreadable file, views of different size or channel count, or a
            single image (not a pair).
    """
    raw = raw or RawOptions()
    if isinstance(item, BadInput):
        raise item.error()
    if isinstance(item, SingleInput):
        raise InputError("a single image, not a dual-pixel pair (NAME_L/NAME_R, left/ + right/, DPDD "
                         "or a Dual Pixel RAW file)", item.path)
    if isinstance(item, RawDPInput):
        from dpcli.io.raw import read_dual_pixel_raw

        dp = read_dual_pixel_raw(item.path, output=raw.output, demosaic=raw.demosaic)
        loaded = LoadedPair(dp.left, dp.right, dp.combined, bit_depth=16, valid=dp.valid)
    else:
        loaded = _load_image_pair(item, raw)
    if item.target is not None and with_target:
        target = read_image(item.target, upright=False)
        _check_size(loaded.left, target.data, item.left, item.target, "target")
        loaded.target = target.data
    if swap_lr:
        loaded.left, loaded.right = loaded.right, loaded.left
    return loaded


def _load_image_pair(item: PairInput, raw: RawOptions) -> LoadedPair:
    if raw.black_level is not None:
        from dpcli.io.raw import PIXEL4_WHITE_LEVEL, read_raw_planes

        left, right = read_raw_planes(item.left, item.right, black_level=raw.black_level,
                                      white_level=raw.white_level or PIXEL4_WHITE_LEVEL,
                                      white_sheet_left=raw.white_sheet_left,
                                      white_sheet_right=raw.white_sheet_right)
        return LoadedPair(left, right, None, bit_depth=16)
    left, right = read_image(item.left, upright=False), read_image(item.right, upright=False)
    _check_size(left.data, right.data, item.left, item.right, "right view")
    if left.channels != right.channels:
        raise InputError(f"{item.left.name} has {left.channels} channel(s) but {item.right.name} has "
                         f"{right.channels}", item.right)
    combined = None
    if item.combined is not None:
        image = read_image(item.combined, upright=False)
        _check_size(left.data, image.data, item.left, item.combined, "combined image")
        combined = image.data
    return LoadedPair(left.data, right.data, combined, bit_depth=max(left.bit_depth, right.bit_depth))


def load_single(item: InputItem, raw: RawOptions | None = None, *, with_target: bool = True,
                srgb: bool = True) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Read an item as one ordinary image -> (image (C, H, W), target or None, bit depth).

    A pair gives its combined image: the shipped one (DPDD ``*_c``, frame 0 of a DP RAW) or the
    mean of the views in linear light (``srgb``: the files are sRGB-encoded; raw planes are linear).
    A single image is read upright, a pair's files as stored (see :func:`load_pair`).
    """
    if isinstance(item, BadInput):
        raise item.error()
    if isinstance(item, SingleInput):
        image = read_image(item.path)
        target = None
        if item.target is not None and with_target:
            target = read_image(item.target).data
            _check_size(image.data, target, item.path, item.target, "target")
        return image.data, target, image.bit_depth
    raw = raw or RawOptions()
    if isinstance(item, RawDPInput):  # frame 0 is the ordinary capture; no second frame needed
        from dpcli.io.raw import read_raw_image

        image = read_raw_image(item.path, output=raw.output, demosaic=raw.demosaic)
        target = read_image(item.target, upright=False).data if item.target is not None and with_target else None
        if target is not None:
            _check_size(image, target, item.path, item.target, "target")
        return image, target, 16
    pair = load_pair(item, raw=raw, with_target=with_target)
    if pair.combined is not None:
        return pair.combined, pair.target, pair.bit_depth
    return mean_view(pair.left, pair.right, srgb=srgb and raw.black_level is None), pair.target, pair.bit_depth


def mean_view(left: np.ndarray, right: np.ndarray, srgb: bool = True) -> np.ndarray:
    """Combined image = (left + right) / 2 in linear light (docs/CONVENTIONS.md); sRGB in -> sRGB out."""
    mean = linear_mean_view(left, right, srgb)
    if not srgb:
        return mean
    import torch

    from dpcli.optics.color import linear_to_srgb

    return linear_to_srgb(torch.from_numpy(mean)).numpy().astype(np.float32)


def linear_mean_view(left: np.ndarray, right: np.ndarray, srgb: bool = True) -> np.ndarray:
    """The combined image in linear light, whatever the views' encoding: (C, H, W) x 2 -> (C, H, W)
    float32. sRGB views are linearised a channel at a time (the conversion's temporaries are one
    plane's, not a frame's)."""
    if not srgb:
        return ((left + right) / 2).astype(np.float32)
    import torch

    from dpcli.optics.color import srgb_to_linear

    out = np.empty(np.shape(left), np.float32)
    for c in range(out.shape[0]):
        out[c] = ((srgb_to_linear(torch.from_numpy(left[c])) + srgb_to_linear(torch.from_numpy(right[c]))) / 2).numpy()
    return out
