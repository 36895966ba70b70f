"""The batch runner every command uses: it processes a list of items (files or pairs) with a rich progress bar (per-file
time, ETA), goes on past a bad item, prints a summary table (or JSON on stdout) and returns the exit
code: 0 all done, 1 some items of a folder run failed, and the error's own code (2 for bad input)
when the run had a single item and it failed, as for any single-file command.

With an :class:`~dpcli.cli.output_plan.OutputPlan` the outputs are checked before any computation;
under ``torchrun`` each process takes its share (:mod:`dpcli.cli.shard`).
"""
from __future__ import annotations

import json
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TypeVar

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dpcli.cli.console import console_err, describe_exception
from dpcli.cli.output_plan import OutputPlan
from dpcli.cli.result import ItemResult
from dpcli.cli.shard import Shard
from dpcli.cli.tables import print_table
from dpcli.errors import DiskFullError, DpError, InputError

if TYPE_CHECKING:
    from dpcli.cli.options import OutputOptions

T = TypeVar("T")


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
    ground_truth: Path | None = None,
    input_view: Callable[[T], object] | None = None,
    notes: Sequence[str] = (),
) -> int:
    """Run ``process`` on every item; report progress, failures and a summary; return the exit code.

    With ``plan`` the outputs are checked before any computation (see :class:`OutputPlan`) and
    the recipe is recorded beside each item's outputs. ``out`` (the output bundle) supplies quiet,
    verbose and json. Under torchrun each rank runs its share; rank 0 reports all of them.
    ``metric_columns``: metric keys, or key -> column title in words; ``detail_columns``: keys of
    ``ItemResult.details`` -> column title (text columns before "output / message"). With the
    output bundle's ``--report`` rank 0 writes ``OUT/report.html`` (:mod:`dpcli.cli.report`), with
    scores against ``ground_truth`` where given; ``input_view(item)`` loads an input as the command
    read it (raw levels applied) for the page and the input's scores. ``notes``: lines about the
    whole run shown under the summary (e.g. images left in subfolders).
    """
    if out is not None:
        quiet, verbose, json_summary = out.quiet, out.verbose, out.json
    titles = dict(metric_columns) if isinstance(metric_columns, dict) else {k: k for k in metric_columns}
    shard = Shard.from_env()
    started = time.time()
    all_items = list(items)
    try:
        return _run(all_items, process, name_of, shard, started, title=title, out=out, plan=plan, quiet=quiet,
                    verbose=verbose, json_summary=json_summary, titles=titles, detail_columns=detail_columns,
                    ground_truth=ground_truth, input_view=input_view, notes=notes)
    finally:
        if plan is not None:
            plan.tidy()


def _run(all_items: list, process: Callable, name_of: Callable, shard: Shard, started: float, *, title: str,
         out: "OutputOptions | None", plan: OutputPlan | None, quiet: bool, verbose: bool, json_summary: bool,
         titles: dict[str, str], detail_columns: dict[str, str] | None, ground_truth: Path | None,
         input_view: Callable | None, notes: Sequence[str]) -> int:
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
        for index, item in enumerate(mine):
            name = name_of(item)
            progress.update(task, current=name)
            result, full = _one_item(item, name, process, plan, decisions.get(name, "run"), error_codes, verbose)
            results.append(result)
            if result.status == "failed":
                console_err.print(f"[red]error:[/red] {escape(result.message)}", highlight=False,
                                  soft_wrap=True)
            elif verbose and show:
                said = "".join(f"; {k}: {v}" for k, v in result.details.items() if k in _DECISION_ONLY)
                console_err.print(f"{name}: {result.status} in {result.seconds:.2f} s{said}", highlight=False)
            progress.advance(task)
            if full is not None:  # every further item would fail the same way: stop, say what the rest needs
                left = [it for it in mine[index:] if decisions.get(name_of(it), "run") != "skip"]
                console_err.print(f"[red]error:[/red] {escape(_disk_full_line(full, results, len(left)))}",
                                  highlight=False, soft_wrap=True)
                break
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
    folder = _summary_folder(plan, out)
    page = None
    if out is not None and out.report and folder is not None:
        page = _write_page(folder, all_items, results, name_of, plan, ground_truth, input_view)
    code = _report(results, error_codes, titles, dict(detail_columns or {}), quiet=quiet,
                   json_summary=json_summary, folder=folder, notes=notes)
    if page is not None and not json_summary:
        console_err.print(f"report: {page}", highlight=False, soft_wrap=True)
    return code


def _one_item(item, name: str, process: Callable, plan: OutputPlan | None, decision: str,
              error_codes: list[int], verbose: bool) -> tuple[ItemResult, DiskFullError | None]:
    """One item through ``process`` (or skipped as done earlier): its result, and the error when the
    disk is full. A failure leaves no partial output."""
    start = time.perf_counter()
    fresh: list[Path] = []  # outputs this attempt may create: removed again if it fails
    full = None
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
        full = exc if isinstance(exc, DiskFullError) else None
    except KeyboardInterrupt:  # the item stopped half way leaves nothing behind
        if plan is not None:
            plan.discard(name, fresh)
        raise
    except Exception as exc:  # one bad file must not end a folder run
        if verbose:
            console_err.print(traceback.format_exc(), highlight=False, markup=False)
        result = ItemResult(name=name, status="failed", message=f"{name}: {describe_exception(exc)}")
        error_codes.append(1)
    if result.status == "failed" and plan is not None:  # no partial output of a failed item
        plan.discard(name, fresh)
    result.seconds = result.seconds or time.perf_counter() - start
    return result, full


def _size(nbytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return ""


def _disk_full_line(error: DiskFullError, results: list[ItemResult], left: int) -> str:
    """The stop line of a full disk: how much the items left need (the mean output size of this run's
    finished items, else the size of the write that failed) and how much is free."""
    import shutil

    sizes = [Path(o).stat().st_size for r in results if r.status == "ok" for o in r.outputs if Path(o).is_file()]
    done = sum(r.status == "ok" for r in results)
    each = sum(sizes) / done if done else error.needed
    where = error.path.parent if error.path is not None else Path.cwd()
    try:
        free = f"{_size(shutil.disk_usage(where).free)} free there"
    except OSError:
        free = "free space unknown"
    return (f"no space left on the device of {where}: stopped; the {left} item{'s' if left != 1 else ''} left "
            f"need about {_size(each * left)} ({free}). Free some space and run the same command again: it "
            "continues where it stopped")


def _write_page(folder: Path, items: list, results: list[ItemResult], name_of: Callable, plan: OutputPlan | None,
                ground_truth: Path | None, input_view: Callable | None) -> Path:
    """OUT/report.html of this batch (see :mod:`dpcli.cli.report`)."""
    from dpcli.cli.report import ground_truth_scores, report_items, write_report

    inputs_of = {name_of(it): list(plan.inputs(it) if plan is not None else getattr(it, "paths", []))
                 for it in items}
    scores, note = ({}, "") if ground_truth is None else ground_truth_scores(folder, items, ground_truth,
                                                                             input_view, name_of)
    views = None if input_view is None else {name_of(it): (lambda it=it: input_view(it)) for it in items}
    if ground_truth is not None and not note:
        note = f"; scores against {ground_truth}"
    return write_report(Path(folder) / "report.html", report_items(results, inputs_of, scores, views),
                        title=f"dpdeblur: {Path(folder).name}", note=note)


def _summary_folder(plan: OutputPlan | None, out: "OutputOptions | None") -> Path | None:
    if plan is not None:
        return Path(plan.folder)
    return out.folder if out is not None else None


# past this many items the summary is the counts, the failures and the slowest few; the full table
# goes to --json and to OUT/summary.json
SUMMARY_ROWS = 20
SLOWEST = 5


def _report(results: list[ItemResult], error_codes: list[int], titles: dict[str, str], details: dict[str, str],
            *, quiet: bool, json_summary: bool, folder: Path | None, notes: Sequence[str] = ()) -> int:
    failed = [r for r in results if r.status == "failed"]
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    summary = {"items": [asdict(r) for r in results], "counts": counts,
               "output": str(folder) if folder is not None else None, "notes": list(notes)}
    if json_summary:
        print(json.dumps(summary, indent=2))
    elif not quiet and not (len(results) == 1 and failed):  # one failed item: its error line says it
        if len(results) <= SUMMARY_ROWS:
            print_summary(results, titles, details)
        else:
            _print_long_run(results, titles, details, folder, summary)
        for line in [*notes, *_item_notes(results)]:
            console_err.print(f"note: {escape(line)}", highlight=False, soft_wrap=True)
    if failed:
        if len(results) > 1:  # one item: its error line says it all
            console_err.print(f"[red]{len(failed)} of {len(results)} failed:[/red]", highlight=False)
            for r in failed[:SUMMARY_ROWS]:
                console_err.print(f"  {escape(r.message)}", highlight=False, soft_wrap=True)
            if len(failed) > SUMMARY_ROWS:
                where = f" in {Path(folder) / 'summary.json'}" if folder is not None and not json_summary else ""
                console_err.print(f"  ... and {len(failed) - SUMMARY_ROWS} more{where}", highlight=False,
                                  soft_wrap=True)
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


def _print_long_run(results: list[ItemResult], titles: dict[str, str], details: dict[str, str],
                    folder: Path | None, summary: dict) -> None:
    """More items than a screen holds: the counts, the slowest few (the failures follow); the full
    table to OUT/summary.json (what --json prints)."""
    counts = summary["counts"]
    console_err.print(f"summary: {len(results)} items, {counts['ok']} done, {counts['skipped']} skipped (done "
                      f"earlier), {counts['failed']} failed", highlight=False, soft_wrap=True)
    ran = sorted((r for r in results if r.status == "ok"), key=lambda r: -r.seconds)[:SLOWEST]
    if ran:
        print_summary(ran, titles, details, title=f"the {len(ran)} slowest")
    if folder is not None and Path(folder).is_dir():
        from dpcli.io.images import atomic_write_bytes

        path = Path(folder) / "summary.json"
        try:
            atomic_write_bytes(path, json.dumps(summary, indent=2).encode(), overwrite=True)
            console_err.print(f"every item: {path} (or --json)", highlight=False, soft_wrap=True)
        except DpError as exc:
            console_err.print(f"every item: --json ({exc.one_line()})", highlight=False, soft_wrap=True)


def _item_notes(results: list[ItemResult]) -> list[str]:
    """The items' notes (``details["note"]``), each once with the items it concerns."""
    by_note: dict[str, list[str]] = {}
    for r in results:
        for note in filter(None, r.details.get("note", "").split("; ")):
            by_note.setdefault(note, []).append(r.name)
    lines = []
    for note, names in by_note.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"{shown}: {note}")
    return lines


# details whose table cell is the decision alone ("as given", "swapped"): the evidence in brackets
# stays in --json and -v lines, so the summary fits 80 columns
_DECISION_ONLY = ("orientation",)


def _cell(key: str, value: object) -> str:
    text = str(value)
    return text.split(" (", 1)[0] if key in _DECISION_ONLY else text


def _metric_cell(title: str, value: float) -> str:
    """A metric at the precision its unit deserves: seconds to 0.1, pixels to 0.01, else 4 digits."""
    if title.endswith("(s)"):
        return f"{value:.1f}"
    return f"{value:.2f}" if title.endswith("(px)") else f"{value:.4f}"


def print_summary(results: list[ItemResult], metric_columns: Iterable[str] | dict[str, str],
                  detail_columns: dict[str, str] | None = None, *, title: str = "summary") -> None:
    """The summary table; a failed item's cell points to its full error line under the table."""
    titles = dict(metric_columns) if isinstance(metric_columns, dict) else {k: k for k in metric_columns}
    details = dict(detail_columns or {})
    headers = ["item", "status", "time (s)", *titles.values(), *details.values(), "output / message"]
    rows = []
    for r in results:
        style = {"ok": "green", "skipped": "yellow", "failed": "red"}[r.status]
        metrics = [_metric_cell(titles[c], r.metrics[c]) if c in r.metrics else "" for c in titles]
        detail = "error below" if r.status == "failed" else escape(", ".join(Path(o).name for o in r.outputs))
        texts = [escape(_cell(k, r.details.get(k, ""))) for k in details]
        rows.append([escape(r.name), f"[{style}]{r.status}[/{style}]", f"{r.seconds:.2f}", *metrics, *texts, detail])
    print_table(title, headers, rows,
                justify=["left", "left", "right", *["right"] * len(titles), *["left"] * len(details), "left"])


def require_inputs(paths: Sequence[Path], pairs: Sequence[tuple[Path, Path]] = ()) -> None:
    """Fail fast with one line if any path given on the command line does not exist."""
    if not paths and not pairs:
        raise DpError("no input given")
    paths = [*paths, *(p for pair in pairs for p in pair)]
    for path in paths:
        if not Path(path).exists():
            raise InputError("no such file or folder", path)


def gather_items(paths: Sequence[Path], exclude: Sequence[Path | None], recursive: bool,
                 pairs: Sequence[tuple[Path, Path]] = ()) -> list:
    """The items (pairs, photos, :class:`~dpcli.io.pairs.BadInput`) of the files and folders given
    (and of ``pairs``, ``--pair LEFT RIGHT``), probed; one line when there is nothing to do: no
    images at all, or only unreadable ones."""
    from dpcli.io.pairs import BadInput, discover_inputs, probe_items

    items = probe_items(discover_inputs(paths, exclude=list(exclude), recursive=recursive, pairs=pairs))
    if not items:
        raise InputError("no images found", paths[0])
    if all(isinstance(it, BadInput) for it in items):
        raise items[0].error()
    return items


def subfolder_note(paths: Sequence[Path], exclude: Sequence[Path | None], recursive: bool) -> list[str]:
    """A line for the summary when a folder run without --recursive left images in subfolders."""
    from dpcli.io.pairs import left_in_subfolders

    if recursive:
        return []
    count, where = left_in_subfolders(paths, exclude=[p for p in exclude if p is not None])
    if not count:
        return []
    return [f"{count} {'image or pair' if count == 1 else 'images or pairs'} in subfolders ({', '.join(where)}"
            f"{' ...' if len(where) == 3 else ''}) left out: -r (--recursive) takes them"]


@contextmanager
def naming(item):
    """An input error raised without a file (e.g. a method's size limit) names the item's file."""
    try:
        yield
    except InputError as exc:
        if exc.path is None and getattr(item, "paths", None):
            raise InputError(exc.message, item.paths[0]) from None
        raise
