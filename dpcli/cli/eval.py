"""`dpdeblur eval`: metrics users can trust (PSNR / SSIM / MAE as docs/CONVENTIONS.md, LPIPS with a
named backbone, defocus-map metrics), per image and mean; thin layer over dpcli.metrics.evaluate."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.markup import escape

from dpcli.cli.app import app
from dpcli.cli.console import console, console_err
from dpcli.cli.options import OutputOptions, bundle, with_bundles
from dpcli.cli.tables import print_table
from dpcli.errors import DpError

_EPILOG = """Examples:

  dpdeblur run examples/pairs -o out/
  dpdeblur eval --pred out/ --gt examples/ground_truth

  # the blurry input
  dpdeblur eval --pred examples/pairs --combined --gt examples/ground_truth

  dpdeblur eval --pred out/ --gt ../shared/data/pixel4 --protocol pixel4 \\
      --json-file scores.json

  dpdeblur eval --pred out/ --gt DPDD/ --protocol dpdd --csv scores.csv \\
      --json > scores.json

  dpdeblur eval --pred out/ --gt gt/ --lpips vgg --gt-maps gt_maps/
"""

_HEAD = {"psnr": "PSNR (dB)", "ssim": "SSIM", "mae": "MAE", "lpips_alex": "LPIPS (AlexNet)",
         "lpips_vgg": "LPIPS (VGG)", "map_spearman": "map Spearman", "map_aiwe1": "map AIWE1",
         "map_aiwe2": "map AIWE2", "map_mae_px": "map MAE (px)"}


def _fmt(key: str, value: float) -> str:
    return f"{value:.2f}" if key == "psnr" else f"{value:.4f}"


@contextlib.contextmanager
def _combined_views(folder: Path) -> Iterator[Path]:
    """A temporary folder of NAME.tiff: the combined view of every input found in ``folder`` (a DP
    pair's shipped combined image, else the mean of its views in linear light), float, exact."""
    from dpcli.io.images import write_image
    from dpcli.io.pairs import BadInput, discover_inputs, load_single

    items = discover_inputs([folder])
    with tempfile.TemporaryDirectory(prefix="dpdeblur-input-") as tmp:
        for item in items:
            if isinstance(item, BadInput):
                raise item.error()
            image, _, _ = load_single(item, with_target=False)
            write_image(Path(tmp) / f"{item.name}.tiff", image, 32)
        yield Path(tmp)


@app.command("eval", epilog=_EPILOG)
@with_bundles
def eval_command(
    pred: Path = typer.Option(..., "--pred", help="Folder of predictions (matched to GT by name; "
                              "suffixes like _aif/_deblurred are ignored). NAME_defocus.tiff maps are used too."),
    gt: Path = typer.Option(..., "--gt", help="Ground truth: a folder of images, a DPDD root, the Pixel 4 "
                            "folder, or the canon-dpdd-gif folder."),
    protocol: str = typer.Option("auto", "--protocol", help="auto | plain | dpdd | pixel4 | canon."),
    lpips: str = typer.Option("auto", "--lpips", help="auto (AlexNet if converted) | alex | vgg | none. "
                              "Weights: `dpdeblur convert-lpips`."),
    maps: Optional[Path] = typer.Option(None, "--maps", help="Folder of predicted NAME_defocus.tiff/.npy maps "
                                        "(default: next to the predictions)."),
    gt_maps: Optional[Path] = typer.Option(None, "--gt-maps", help="Folder of GT defocus maps (px) for plain/dpdd "
                                           "(Pixel 4 GT maps are found automatically)."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the per-image table + mean to this CSV file."),
    combined: bool = typer.Option(False, "--combined", help="--pred holds DP pairs (or any inputs of "
                                  "dpdeblur run): score their combined view, the blurry input, as the baseline "
                                  "a method must beat."),
    json_path: Optional[Path] = typer.Option(None, "--json-file", help='Write {"images": [...], "mean": {...}} '
                                             "to this file (--json prints it on stdout)."),
    out: OutputOptions = bundle(omit=("folder", "bit_depth", "format", "quality", "report"),
                                help={"overwrite": "Replace an existing --csv / --json-file file.",
                                      "json": 'Print {"images": [...], "mean": {...}} on stdout (the table '
                                      "goes to stderr).",
                                      "quiet": "Only the mean line."}),
) -> None:
    """Score predictions against ground truth: PSNR, SSIM, MAE (+ LPIPS, defocus-map metrics).

    PSNR = 10 log10(1/MSE) per image then the plain mean; SSIM = scikit-image
    defaults with data_range=1 (7x7 uniform window), channels averaged; MAE on
    [0, 1]. The bit depth of every file is reported (published DPDD tables use
    16-bit).
    """
    from dpcli.errors import OutputError
    from dpcli.io.images import atomic_write_bytes
    from dpcli.metrics import lpips as L
    from dpcli.metrics.evaluate import evaluate_folders

    if lpips not in ("auto", "alex", "vgg", "none"):
        raise DpError(f"--lpips {lpips}: expected auto, alex, vgg or none")
    net = None
    if lpips == "auto":
        net = "alex" if L.weights_available("alex") else None
    elif lpips != "none":
        net = lpips
    for path, flag in ((csv_path, "--csv"), (json_path, "--json-file")):
        if path is None:
            continue
        if path.exists() and not out.overwrite:
            raise OutputError(f"{flag}: the file exists (use --overwrite to replace it)", path)
        if path.is_dir():
            raise OutputError(f"{flag}: is a folder, expected a file name", path)
    with _combined_views(pred) if combined else contextlib.nullcontext(pred) as pred_dir:
        report = evaluate_folders(pred_dir, gt, protocol=protocol, lpips_net=net, maps_dir=maps,
                                  gt_maps_dir=gt_maps)
    if lpips == "auto" and net is None:
        report.notes.append("LPIPS skipped: no converted weights (run `dpdeblur convert-lpips`)")
    mean = report.mean
    keys = list(mean)
    table_console = console_err if out.json else console
    if out.quiet:
        table_console.print("mean: " + ", ".join(f"{_HEAD.get(k, k)} {_fmt(k, v)}" for k, v in mean.items()),
                            highlight=False)
    else:
        rows = [[escape(r.name), *[_fmt(k, r.metrics[k]) if k in r.metrics else "" for k in keys], r.bits,
                 escape("; ".join(r.notes))] for r in report.rows]
        footer = ["[bold]mean[/bold]", *[f"[bold]{_fmt(k, mean[k])}[/bold]" for k in keys], "", ""]
        count = f"{len(report.rows)} image{'s' if len(report.rows) != 1 else ''}"
        print_table(f"dpdeblur eval ({report.protocol} protocol, {count})",
                    ["image", *[_HEAD.get(k, k) for k in keys], "bits (pred/GT)", "notes"], rows,
                    target=table_console, justify=["left", *["right"] * len(keys), "right", "left"], footer=footer)
        for note in report.notes:
            console_err.print(f"[dim]{escape(note)}[/dim]", highlight=False)
    if report.unmatched_pred:
        console_err.print(f"[yellow]{len(report.unmatched_pred)} prediction(s) without GT:[/yellow] "
                          + escape(", ".join(report.unmatched_pred)), highlight=False, soft_wrap=True)
    if report.unmatched_gt:
        console_err.print(f"[yellow]{len(report.unmatched_gt)} GT image(s) without prediction:[/yellow] "
                          + escape(", ".join(report.unmatched_gt)), highlight=False, soft_wrap=True)
    payload = json.dumps(report.to_json(), indent=2)
    if out.json:
        print(payload)
    if json_path is not None:
        atomic_write_bytes(json_path, payload.encode(), overwrite=out.overwrite)
    if csv_path is not None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["name", *keys, "bits", "notes"])
        for r in report.rows:
            writer.writerow([r.name, *[f"{r.metrics[k]:.6f}" if k in r.metrics else "" for k in keys], r.bits,
                             "; ".join(r.notes)])
        writer.writerow(["mean", *[f"{mean[k]:.6f}" for k in keys], "", ""])
        atomic_write_bytes(csv_path, buf.getvalue().encode(), overwrite=out.overwrite)
