"""What every command shares: consoles, tables that fit, output planning and the batch runner.

The batch runner processes a list of items (files or pairs) with a rich progress bar (per-file
time, ETA), goes on past a bad item, prints a summary table (or JSON on stdout) and returns the exit
code: 0 all done, 1 some items of a folder run failed, and the error's own code (2 for bad input)
when the run had a single item and it failed, as for any single-file command.

Nothing is lost: before any computation an :class:`OutputPlan` compares each item's outputs with
the record of what made them (``OUT/.dpdeblur/NAME.json``: method, weights, options, input files).
Outputs made the same way from the same inputs are skipped; outputs made otherwise are refused in
one line naming them and the difference (``--overwrite`` replaces them); an output that would
replace an input is refused. Under ``torchrun`` (RANK / WORLD_SIZE) every process takes its share
of the items and rank 0 prints the summary of all of them.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dpcli.errors import DpError

if TYPE_CHECKING:
    from dpcli.cli.options import OutputOptions

console = Console()
console_err = Console(stderr=True)

T = TypeVar("T")

@dataclass
class ItemResult:
    """Outcome of one item of a batch."""

    name: str
    status: str = "ok"  # ok | skipped | failed
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)  # e.g. method, orientation (text columns)


# ------------------------------------------------------------------------------------ error messages
def describe_exception(exc: BaseException) -> str:
    """An unexpected exception in user terms: its message, never its class name or internals."""
    if isinstance(exc, DpError):
        return exc.one_line()
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --tile, or fewer --threads)"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{exc.strerror or 'cannot read or write a file'}"
    text = " ".join(str(exc).split())
    if "out of memory" in text.lower():
        return "out of memory (try a smaller --tile)"
    if len(text) > 160:
        text = text[:157] + "..."
    return f"unexpected failure ({text}); rerun with -v for details" if text else \
        "unexpected failure; rerun with -v for details"


# ---------------------------------------------------------------------------------- tables that fit
def print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                target: Console | None = None, justify: Sequence[str] | None = None,
                footer: Sequence[str] | None = None) -> None:
    """A table whose first column (names a user types) is never cut: the other columns wrap between
    words, and where they cannot fit the console's width the rows become a list, one name a line
    followed by its ``header: value`` lines. Cells may hold rich markup."""
    from rich.text import Text

    target = target or console_err
    justify = list(justify or ["left"] * len(headers))
    all_rows = [[str(c) for c in r] for r in list(rows) + ([list(footer)] if footer else [])]
    keep = [i for i in range(len(headers))  # a column empty in every row says nothing: leave it out
            if i == 0 or any(Text.from_markup(r[i]).plain.strip() for r in all_rows)]
    headers, justify = [headers[i] for i in keep], [justify[i] for i in keep]
    all_rows = [[r[i] for i in keep] for r in all_rows]
    n_rows = len(rows)

    def width(cell: str) -> int:
        return Text.from_markup(cell).cell_len

    def word(cell: str) -> int:  # the longest word: a column narrower than that would cut it
        return max([len(w) for w in Text.from_markup(cell).plain.split()] + [0])

    name_width = max([width(r[0]) for r in all_rows] + [len(headers[0])])
    # Widths of the other columns: short values (numbers, flags) and headers at full width; longer
    # text at least its longest word, sharing what room is left.
    cols = range(1, len(headers))
    natural = {i: max([width(r[i]) for r in all_rows] + [len(headers[i])]) for i in cols}
    least = {i: max([width(r[i]) if width(r[i]) <= 12 else word(r[i]) for r in all_rows] + [word(headers[i])])
             for i in cols}
    room = target.width - 1 - name_width - 2 * (len(headers) - 1)  # two spaces between columns, one spare
    if sum(least.values()) <= room:
        widths = dict(least)
        spare = room - sum(least.values())
        for i in sorted(cols, key=lambda i: natural[i] - least[i]):  # the cheapest to unwrap first
            grow = min(spare, natural[i] - widths[i])
            widths[i] += grow
            spare -= grow
        table = Table(title=title, box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
        table.add_column(headers[0], no_wrap=True, min_width=name_width)
        for i in cols:
            table.add_column(headers[i], justify=justify[i], width=widths[i])  # type: ignore[arg-type]
        for row in all_rows[:n_rows]:
            table.add_row(*row)
        if footer:
            table.add_section()
            table.add_row(*all_rows[-1])
        target.print(table)
        return
    if title:
        target.print(f"[bold]{title}[/bold]", highlight=False)
    for row in all_rows:
        target.print(row[0], highlight=False, soft_wrap=True)
        for head, cell in zip(headers[1:], row[1:]):
            if Text.from_markup(cell).plain.strip():
                target.print(f"    {escape(head)}: {cell}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------- output planning
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
        conflicts: list[str] = []
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
                conflicts.append(f"{present[0].name} (made by something else: no record of how)")
                continue
            if record.get("recipe") != recipe:
                old, new = _flat(record.get("recipe")), _flat(recipe)
                diff = [f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
                        if old.get(k) != new.get(k)]
                conflicts.append(f"{present[0].name} (made with {'; '.join(diff[:3])})")
                continue
            if record.get("inputs") != _fingerprint(self.inputs(item)):
                conflicts.append(f"{present[0].name} (its input changed since)")
                continue
            done = record.get("state") == "done" and len(present) == len(expected)
            decisions[name] = "skip" if done else "redo"
        if clashes:
            raise OutputError(f"refusing to overwrite an input: {clashes[0]}"
                              + (f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else "")
                              + "; choose another output folder (-o)", self.folder)
        if conflicts:
            more = f" and {len(conflicts) - 2} more" if len(conflicts) > 2 else ""
            raise OutputError(f"{len(conflicts)} output(s) here were made another way: "
                              f"{', '.join(conflicts[:2])}{more}; use --overwrite to replace them or "
                              "another output folder (-o)", self.folder)
        return decisions

    def discard(self, name: str, created: Sequence[Path]) -> None:
        """After a failed item: remove the outputs it created, and its record when nothing is left."""
        for p in created:
            Path(p).unlink(missing_ok=True)
        record = self._read_record(name)
        if record is not None and record.get("state") != "done":
            self.record_path(name).unlink(missing_ok=True)

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
        a, b = _flat(old), _flat(new)
        diff = [f"{k} {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        raise OutputError(f"was made with other settings ({'; '.join(diff[:3])}"
                          f"{f' and {len(diff) - 3} more' if len(diff) > 3 else ''}); use --overwrite to "
                          "make it again or another output folder (-o)", folder)
    if old != new:
        atomic_write_bytes(path, json.dumps(new, indent=1).encode(), overwrite=True)
    return old is not None and old != new


# ------------------------------------------------------------------------------------ many machines
@dataclass(frozen=True)
class Shard:
    """This process's share of a folder run: items[rank::world] (torchrun sets RANK / WORLD_SIZE)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> "Shard":
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
        except ValueError:
            raise DpError("RANK and WORLD_SIZE must be whole numbers (as torchrun sets them)") from None
        if world < 1 or not 0 <= rank < world:
            raise DpError(f"RANK {rank} / WORLD_SIZE {world}: expected 0 <= RANK < WORLD_SIZE")
        return cls(rank, world)

    def take(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank::self.world])

    @property
    def run_id(self) -> str:
        """Same in every process of one launch (torchrun's rendezvous), '' when unknown."""
        rid = os.environ.get("TORCHELASTIC_RUN_ID", "")
        rid = "" if rid in ("", "none") else rid
        return f"{rid}:{os.environ.get('MASTER_PORT', '')}:{os.environ.get('TORCHELASTIC_RESTART_COUNT', '')}"

    def part_path(self, folder: Path, rank: int) -> Path:
        return Path(folder) / RECORD_DIR / f"part-{rank}-of-{self.world}.json"

    def write_part(self, folder: Path, started: float, results: list[ItemResult], codes: list[int]) -> None:
        from dpcli.io.images import atomic_write_bytes

        payload = {"run": self.run_id, "started": started, "results": [asdict(r) for r in results], "codes": codes}
        atomic_write_bytes(self.part_path(folder, self.rank), json.dumps(payload).encode(), overwrite=True)

    def gather(self, folder: Path, started: float, timeout: float | None = None
               ) -> tuple[list[ItemResult], list[int]]:
        """Rank 0: wait for every other rank's part (of this launch) and merge them."""
        timeout = float(os.environ.get("DPDEBLUR_RANK_TIMEOUT", "86400")) if timeout is None else timeout
        results: list[ItemResult] = []
        codes: list[int] = []
        waiting = set(range(1, self.world))
        deadline = time.monotonic() + timeout
        while waiting:
            for rank in sorted(waiting):
                try:
                    part = json.loads(self.part_path(folder, rank).read_text())
                except (OSError, ValueError):
                    continue
                same_launch = part.get("run") == self.run_id and (
                    self.run_id.strip(":") != "" or part.get("started", 0) >= started - 300)
                if same_launch:
                    results += [ItemResult(**r) for r in part["results"]]
                    codes += part["codes"]
                    waiting.discard(rank)
            if waiting:
                if time.monotonic() > deadline:
                    raise DpError(f"rank(s) {sorted(waiting)} did not report within {timeout:.0f} s; their "
                                  f"items are not in this summary (see {Path(folder) / RECORD_DIR})")
                time.sleep(0.2)
        return results, codes


# ---------------------------------------------------------------------------------------- the runner
def run_batch(
    items: Sequence[T],
    process: Callable[[T], ItemResult],
    name_of: Callable[[T], str],
    *,
    title: str = "processing",
    out: "OutputOptions | None" = None,
    plan: OutputPlan | None = None,
    quiet: bool = False,
    verbose: bool = False,
    json_summary: bool = False,
    metric_columns: Iterable[str] | dict[str, str] = (),
    detail_columns: dict[str, str] | None = None,
) -> int:
    """Run ``process`` on every item; report progress, failures and a summary; return the exit code.

    With ``plan`` the outputs are checked before any computation (see :class:`OutputPlan`) and
    the recipe is recorded beside each item's outputs. ``out`` (the output bundle) supplies quiet,
    verbose and json. Under torchrun each rank runs its share; rank 0 reports all of them.
    ``metric_columns``: metric keys, or key -> column title in words; ``detail_columns``: keys of
    ``ItemResult.details`` -> column title (text columns before "output / message").
    """
    if out is not None:
        quiet, verbose, json_summary = out.quiet, out.verbose, out.json
    titles = dict(metric_columns) if isinstance(metric_columns, dict) else {k: k for k in metric_columns}
    shard = Shard.from_env()
    started = time.time()
    all_items = list(items)
    decisions: dict[str, str] = {}
    if plan is not None:
        plan.prepare_folder()
        decisions = plan.decide(all_items, name_of)  # every rank checks all: a conflict stops all of them
    mine = shard.take(all_items)
    results: list[ItemResult] = []
    show = not quiet and not json_summary
    progress = Progress(  # a live bar only on a terminal: in logs and pipes it is noise
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console_err, disable=not (show and console_err.is_terminal), transient=False,
    )
    error_codes: list[int] = []
    with progress:
        task = progress.add_task(title if shard.world == 1 else f"{title} (rank {shard.rank})",
                                 total=len(mine), current="")
        for item in mine:
            name = name_of(item)
            progress.update(task, current=name)
            start = time.perf_counter()
            decision = decisions.get(name, "run")
            fresh: list[Path] = []  # outputs this attempt may create: removed again if it fails
            try:
                if decision == "skip":
                    result = ItemResult(name, status="skipped", outputs=[str(p) for p in plan.outputs(item)],
                                        message="done earlier with the same method and options")
                else:
                    if plan is not None:
                        if decision == "redo":
                            plan.remove_partial(item)
                        plan.write_record(name, item, "started")
                        fresh = [Path(p) for p in plan.outputs(item) if not Path(p).exists()]
                    result = process(item)
                    if plan is not None and result.status == "ok":
                        plan.write_record(name, item, "done", result.outputs)
            except DpError as exc:  # its line names the item when the error names no file
                line = exc.one_line()
                message = line if exc.path is not None or line.startswith(f"{name}:") else f"{name}: {line}"
                result = ItemResult(name=name, status="failed", message=message)
                error_codes.append(exc.exit_code)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one bad file must not end a folder run
                if verbose:
                    console_err.print(traceback.format_exc(), highlight=False, markup=False)
                result = ItemResult(name=name, status="failed", message=f"{name}: {describe_exception(exc)}")
                error_codes.append(1)
            if result.status == "failed" and plan is not None:  # no partial output of a failed item
                plan.discard(name, fresh)
            result.seconds = result.seconds or time.perf_counter() - start
            results.append(result)
            if result.status == "failed":
                console_err.print(f"[red]error:[/red] {escape(result.message)}", highlight=False,
                                  soft_wrap=True)
            elif verbose and show:
                console_err.print(f"{name}: {result.status} in {result.seconds:.2f} s", highlight=False)
            progress.advance(task)
    if shard.world > 1:
        folder = _summary_folder(plan, out)
        if folder is None:
            raise DpError("a run split over processes (torchrun) needs an output folder (-o) for the summary")
        shard.write_part(Path(folder), started, results, error_codes)
        if shard.rank != 0:
            return 1 if any(r.status == "failed" for r in results) else 0
        others, codes = shard.gather(Path(folder), started)
        results += others
        error_codes += codes
        order = {name_of(it): i for i, it in enumerate(all_items)}
        results.sort(key=lambda r: order.get(r.name, len(order)))
    return _report(results, error_codes, titles, dict(detail_columns or {}), quiet=quiet,
                   json_summary=json_summary, folder=_summary_folder(plan, out))


def _summary_folder(plan: OutputPlan | None, out: "OutputOptions | None") -> Path | None:
    if plan is not None:
        return Path(plan.folder)
    return out.folder if out is not None else None


def _report(results: list[ItemResult], error_codes: list[int], titles: dict[str, str], details: dict[str, str],
            *, quiet: bool, json_summary: bool, folder: Path | None) -> int:
    failed = [r for r in results if r.status == "failed"]
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    if json_summary:
        print(json.dumps({"items": [asdict(r) for r in results], "counts": counts,
                          "output": str(folder) if folder is not None else None}, indent=2))
    elif not quiet and not (len(results) == 1 and failed):  # one failed item: its error line says it
        print_summary(results, titles, details)
    if failed:
        if len(results) > 1:  # one item: its error line says it all
            console_err.print(f"[red]{len(failed)} of {len(results)} failed:[/red] "
                              + escape(", ".join(r.name for r in failed)), highlight=False, soft_wrap=True)
    elif not json_summary:  # the final line, also with -q
        where = f" -> {folder}" if folder is not None else ""
        console_err.print(f"{counts['ok']} done, {counts['skipped']} skipped (done earlier), 0 failed{where}",
                          highlight=False, soft_wrap=True)
    if failed:
        # One input that failed is a bad-input error (2), not a partly failed folder run (1).
        if len(results) == 1 and len(error_codes) == 1:
            return error_codes[0]
        return 1
    return 0


def print_summary(results: list[ItemResult], metric_columns: Iterable[str] | dict[str, str],
                  detail_columns: dict[str, str] | None = None) -> None:
    titles = dict(metric_columns) if isinstance(metric_columns, dict) else {k: k for k in metric_columns}
    details = dict(detail_columns or {})
    headers = ["item", "status", "time (s)", *titles.values(), *details.values(), "output / message"]
    rows = []
    for r in results:
        style = {"ok": "green", "skipped": "yellow", "failed": "red"}[r.status]
        metrics = [f"{r.metrics[c]:.4f}" if c in r.metrics else "" for c in titles]
        detail = escape(r.message if r.status != "ok" else ", ".join(Path(o).name for o in r.outputs))
        texts = [escape(str(r.details.get(k, ""))) for k in details]
        rows.append([escape(r.name), f"[{style}]{r.status}[/{style}]", f"{r.seconds:.2f}", *metrics, *texts, detail])
    print_table("summary", headers, rows,
                justify=["left", "left", "right", *["right"] * len(titles), *["left"] * len(details), "left"])


def require_inputs(paths: Sequence[Path]) -> None:
    """Fail fast with one line if any path given on the command line does not exist."""
    if not paths:
        raise DpError("no input given")
    for path in paths:
        if not Path(path).exists():
            from dpcli.errors import InputError

            raise InputError("no such file or folder", path)
