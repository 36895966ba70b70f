"""Nothing is lost: before any computation an :class:`OutputPlan` compares each item's outputs with
the record of what made them (``OUT/.dpdeblur/NAME.json``: method, weights, options, input files).
Outputs made the same way from the same inputs are skipped; outputs made otherwise are refused in
one line naming them and the difference (``--overwrite`` replaces them); an output that would
replace an input is refused.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence


RECORD_DIR = ".dpdeblur"


def _fingerprint(paths: Iterable[Path]) -> list[list]:
    """Input files as [name, size, mtime_ns]: an input changed since an output was made is noticed."""
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
            out.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(p), -1, -1])
    return out


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def differences(old: Any, new: Any, most: int = 3) -> str:
    """What changed between two recipes, in the words of the options: ``method auto -> classical``.
    Settings both recipes hold come first (a setting the other lacks follows from one of them: it
    is listed only when nothing else differs); another command is named as such."""
    a, b = _flat(old), _flat(new)
    if a.get("command") != b.get("command") and a.get("command"):
        return f"made by dpdeblur {a['command']}"
    both = [k for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    keys = both or [k for k in sorted(set(a) ^ set(b)) if a.get(k) is not None or b.get(k) is not None]

    def words(value: Any) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return "none" if value is None else str(value)

    def key_words(key: str) -> str:  # "config.max_radius" -> "max radius"
        return key.removeprefix("config.").replace(".", " ").replace("_", " ")

    lines = [f"{key_words(k)} {words(a.get(k))} -> {words(b.get(k))}" for k in keys[:most]]
    return "; ".join(lines) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass
class OutputPlan:
    """Where a batch writes and what makes its outputs (see the module docstring).

    Args:
        folder: the output folder (-o); created and checked writable before any computation.
        recipe: JSON-able description of everything that changes the output pixels (method,
            weights id, options). Outputs recorded with another recipe are never silently kept
            or replaced.
        outputs: item -> the files it writes.
        inputs: item -> its input files (never overwritten; their size and time are recorded).
        overwrite: --overwrite (replace outputs whatever made them; never an input).
    """

    folder: Path
    recipe: dict
    outputs: Callable[[Any], Sequence[Path]]
    inputs: Callable[[Any], Sequence[Path]] = lambda item: list(getattr(item, "paths", []))
    overwrite: bool = False
    _made: list[Path] = field(default_factory=list, init=False, repr=False)  # folders this run created

    def record_path(self, name: str) -> Path:
        return Path(self.folder) / RECORD_DIR / f"{name}.json"

    def _read_record(self, name: str) -> dict | None:
        try:
            return json.loads(self.record_path(name).read_text())
        except (OSError, ValueError):
            return None

    def write_record(self, name: str, item: Any, state: str, outputs: Sequence[str] = ()) -> None:
        from dpcli.io.images import atomic_write_bytes

        record = {"state": state, "recipe": _jsonable(self.recipe), "inputs": _fingerprint(self.inputs(item)),
                  "outputs": [Path(o).name for o in outputs]}
        atomic_write_bytes(self.record_path(name), json.dumps(record, indent=1).encode(), overwrite=True)

    def prepare_folder(self) -> None:
        """Create the output folder and prove it writable (one line naming it otherwise)."""
        from dpcli.errors import OutputError

        folder = Path(self.folder)
        if folder.exists() and not folder.is_dir():
            raise OutputError("the output (-o) is a file, not a folder", folder)
        self._made = [p for p in (*reversed(folder.parents), folder, folder / RECORD_DIR)
                      if p not in self._made and not p.exists()]
        try:
            (folder / RECORD_DIR).mkdir(parents=True, exist_ok=True)
            probe = folder / RECORD_DIR / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"cannot write to the output folder ({exc.strerror or 'not writable'})",
                              folder) from None

    def decide(self, items: Sequence[Any], name_of: Callable[[Any], str]) -> dict[str, str]:
        """name -> "run" | "redo" (own partial outputs, removed first) | "skip"; conflicts raise
        one :class:`OutputError` listing them, before anything is computed."""
        from dpcli.errors import OutputError

        protected = {Path(p).resolve() for item in items for p in self.inputs(item)}
        recipe = _jsonable(self.recipe)
        decisions: dict[str, str] = {}
        conflicts: list[tuple[str, str]] = []
        clashes: list[str] = []
        for item in items:
            name = name_of(item)
            expected = [Path(p) for p in self.outputs(item)]
            hit = [p for p in expected if p.resolve() in protected]
            if hit:
                clashes.append(f"{hit[0]} is an input")
                continue
            present = [p for p in expected if p.exists()]
            if self.overwrite or not present:
                decisions[name] = "run"
                continue
            record = self._read_record(name)
            if record is None:
                conflicts.append((present[0].name, "made by something else: no record of how"))
                continue
            if record.get("recipe") != recipe:
                conflicts.append((present[0].name, differences(record.get("recipe"), recipe)))
                continue
            if record.get("inputs") != _fingerprint(self.inputs(item)):
                conflicts.append((present[0].name, "its input changed since"))
                continue
            done = record.get("state") == "done" and len(present) == len(expected)
            decisions[name] = "skip" if done else "redo"
        if clashes:
            raise OutputError(f"refusing to overwrite an input: {clashes[0]}"
                              + (f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else "")
                              + "; choose another output folder (-o)", self.folder)
        if conflicts:
            names = [n for n, _ in conflicts]
            listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            reasons = list(dict.fromkeys(r for _, r in conflicts))
            why = reasons[0] if len(reasons) == 1 else "; ".join(f"{n}: {r}" for n, r in conflicts[:2])
            raise OutputError(f"{'an output' if len(names) == 1 else f'{len(names)} outputs'} here "
                              f"{'was' if len(names) == 1 else 'were'} made another way ({why}): {listed}; "
                              "use --overwrite to replace them or another output folder (-o)", self.folder)
        return decisions

    def discard(self, name: str, created: Sequence[Path]) -> None:
        """After a failed item: remove the outputs it created, and its record when nothing is left."""
        for p in created:
            Path(p).unlink(missing_ok=True)
        record = self._read_record(name)
        if record is not None and record.get("state") != "done":
            self.record_path(name).unlink(missing_ok=True)

    def tidy(self) -> None:
        """Remove the folders this run created and left empty (a run whose every item failed, or
        that was refused or interrupted, leaves no empty OUT/ or OUT/.dpdeblur/ behind)."""
        for path in reversed(self._made):
            try:
                path.rmdir()  # only when empty
            except OSError:
                pass

    def remove_partial(self, item: Any) -> None:
        for p in self.outputs(item):
            Path(p).unlink(missing_ok=True)


def check_folder_recipe(folder: Path, what: str, recipe: dict, overwrite: bool) -> bool:
    """One record for a whole folder (``OUT/.dpdeblur/WHAT.json``), for commands whose items share
    one recipe (synth): a folder made another way is refused in one line saying what differs,
    before any work, unless ``overwrite``; then the record is (re)written. A folder without a record
    (made before records existed) is taken as it is. Returns True when the folder was made another
    way and ``overwrite`` allows making it again (the caller removes what the old recipe made)."""
    from dpcli.errors import OutputError
    from dpcli.io.images import atomic_write_bytes

    path = Path(folder) / RECORD_DIR / f"{what}.json"
    new = _jsonable(recipe)
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if old is not None and old != new and not overwrite:
        raise OutputError(f"was made with other settings ({differences(old, new)}); use --overwrite to "
                          "make it again or another output folder (-o)", folder)
    if old != new:
        atomic_write_bytes(path, json.dumps(new, indent=1).encode(), overwrite=True)
    return old is not None and old != new
