"""What every command shares: consoles, common options, and the batch runner.

The batch runner processes a list of items (files or pairs) with a rich progress bar (per-file
time, ETA), goes on past a bad item, prints a summary table and optionally a JSON summary, and
returns the exit code: 0 all done, 1 some items of a folder run failed, and the error's own code
(2 for bad input) when the run had a single item and it failed, as for any single-file command.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dpcli.errors import DpError

if TYPE_CHECKING:
    from dpcli.io.pairs import RawOptions

console = Console()
console_err = Console(stderr=True)

T = TypeVar("T")

# Shared option declarations (one place for names and help texts).
DEVICE_OPTION = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps.")
PRECISION_OPTION = typer.Option("fp32", "--precision", help="fp32 | bf16 (CPU AMX, CUDA) | fp16 (CUDA).")
THREADS_OPTION = typer.Option(0, "--threads", help="CPU threads (0 = torch default).")
OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="Replace outputs that exist (default: skip them).")
QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="Only errors and the final line.")
VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", help="More detail; tracebacks of unexpected errors.")
JSON_OPTION = typer.Option(False, "--json", help="Print a JSON summary on stdout (for scripts).")
BIT_DEPTH_OPTION = typer.Option("input", "--bit-depth", help="Output bit depth: input | 8 | 16 | 32f.")
SWAP_LR_OPTION = typer.Option(False, "--swap-lr", help="Treat the file called left as the right view.")
TILE_OPTION = typer.Option(None, "--tile", help="Tile size in px (0 = one full-frame pass; default per model).")
TILE_OVERLAP_OPTION = typer.Option(None, "--tile-overlap", help="Overlap between tiles in px (default per model).")
# Raw input (dpcli.io.raw): Pixel-style raw planes stored as images, and Dual Pixel RAW rendering.
BLACK_LEVEL_OPTION = typer.Option(None, "--black-level", help="Views are raw planes (counts): subtract this "
                                  "black level (Pixel 4: 1024). Off by default (views are ordinary images).")
WHITE_LEVEL_OPTION = typer.Option(None, "--white-level", help="Raw planes: divide by this after black "
                                  "subtraction (default 16383 = 2^14 - 1, Pixel 4).")
WHITE_SHEET_LEFT_OPTION = typer.Option(None, "--white-sheet-left", help="Raw planes: left view of a "
                                       "white-sheet capture, for vignetting correction (with --white-sheet-right).")
WHITE_SHEET_RIGHT_OPTION = typer.Option(None, "--white-sheet-right", help="Raw planes: right view of the "
                                        "white-sheet capture.")
RAW_OUTPUT_OPTION = typer.Option("srgb", "--raw-output", help="Dual Pixel RAW (.CR2/.DNG) rendering: srgb | linear.")


@dataclass
class ItemResult:
    """Outcome of one item of a batch."""

    name: str
    status: str = "ok"  # ok | skipped | failed
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def parse_bit_depth(value: str, input_depth: int) -> int:
    """``--bit-depth`` value -> 8, 16 or 32 (float); ``input`` keeps the input's depth."""
    mapping = {"input": input_depth, "8": 8, "16": 16, "32f": 32, "32": 32}
    if value not in mapping:
        raise DpError(f"--bit-depth {value}: expected input, 8, 16 or 32f")
    return mapping[value]


def run_batch(
    items: Sequence[T],
    process: Callable[[T], ItemResult],
    name_of: Callable[[T], str],
    *,
    title: str = "processing",
    quiet: bool = False,
    verbose: bool = False,
    json_summary: bool = False,
    metric_columns: Iterable[str] = (),
) -> int:
    """Run ``process`` on every item; report progress, failures and a summary; return the exit code."""
    results: list[ItemResult] = []
    show = not quiet and not json_summary
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console_err, disable=not show, transient=False,
    )
    error_codes: list[int] = []
    with progress:
        task = progress.add_task(title, total=len(items), current="")
        for item in items:
            name = name_of(item)
            progress.update(task, current=name)
            start = time.perf_counter()
            try:
                result = process(item)
            except DpError as exc:
                result = ItemResult(name=name, status="failed", message=exc.one_line())
                error_codes.append(exc.exit_code)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one bad file must not end a folder run
                if verbose:
                    console_err.print(traceback.format_exc())
                result = ItemResult(name=name, status="failed", message=f"{name}: {type(exc).__name__}: {exc}")
                error_codes.append(1)
            result.seconds = result.seconds or time.perf_counter() - start
            results.append(result)
            if result.status == "failed":
                console_err.print(f"[red]error:[/red] {result.message}", highlight=False, soft_wrap=True)
            elif verbose and show:
                console_err.print(f"{name}: {result.status} in {result.seconds:.2f} s")
            progress.advance(task)
    failed = [r for r in results if r.status == "failed"]
    if json_summary:
        summary = {"items": [asdict(r) for r in results],
                   "counts": {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}}
        print(json.dumps(summary, indent=2))
    elif not quiet:
        print_summary(results, list(metric_columns))
    if failed:
        console_err.print(f"[red]{len(failed)} of {len(results)} failed:[/red] "
                          + ", ".join(r.name for r in failed), highlight=False, soft_wrap=True)
        # One input that failed is a bad-input error (2), not a partly failed folder run (1).
        if len(results) == 1 and len(error_codes) == 1:
            return error_codes[0]
        return 1
    return 0


def print_summary(results: list[ItemResult], metric_columns: list[str]) -> None:
    table = Table(title="summary", show_lines=False)
    table.add_column("item")
    table.add_column("status")
    table.add_column("time (s)", justify="right")
    for column in metric_columns:
        table.add_column(column, justify="right")
    table.add_column("output / message")
    for r in results:
        style = {"ok": "green", "skipped": "yellow", "failed": "red"}[r.status]
        metrics = [f"{r.metrics[c]:.4f}" if c in r.metrics else "" for c in metric_columns]
        detail = r.message if r.status == "failed" else ", ".join(Path(o).name for o in r.outputs)
        table.add_row(r.name, f"[{style}]{r.status}[/{style}]", f"{r.seconds:.2f}", *metrics, detail)
    console_err.print(table)


def require_inputs(paths: Sequence[Path]) -> None:
    """Fail fast with one line if any path given on the command line does not exist."""
    if not paths:
        raise DpError("no input given")
    for path in paths:
        if not Path(path).exists():
            from dpcli.errors import InputError

            raise InputError("no such file or folder", path)


def raw_options(black_level: float | None = None, white_level: float | None = None,
                white_sheet_left: Path | None = None, white_sheet_right: Path | None = None,
                raw_output: str = "srgb") -> "RawOptions":
    """The raw options above -> :class:`dpcli.io.pairs.RawOptions`, checked (DpError on bad values)."""
    from dpcli.errors import InputError
    from dpcli.io.pairs import RawOptions

    if raw_output not in ("srgb", "linear"):
        raise DpError(f"--raw-output {raw_output}: expected srgb or linear")
    if (white_sheet_left is None) != (white_sheet_right is None):
        raise DpError("--white-sheet-left and --white-sheet-right go together")
    if white_sheet_left is not None and black_level is None:
        raise DpError("--white-sheet-left/--white-sheet-right need --black-level (raw planes)")
    if white_level is not None and white_level <= 0:
        raise DpError(f"--white-level {white_level}: must be positive")
    for sheet in (white_sheet_left, white_sheet_right):
        if sheet is not None and not Path(sheet).is_file():
            raise InputError("no such white-sheet file", sheet)
    return RawOptions(black_level=black_level, white_level=white_level, white_sheet_left=white_sheet_left,
                      white_sheet_right=white_sheet_right, output=raw_output)
