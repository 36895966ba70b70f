"""`dpdeblur eval`: metrics users can trust (PSNR / SSIM / MAE as CONVENTIONS.md, LPIPS with a
named backbone, defocus-map metrics), per image and mean; thin layer over dpcli.metrics.evaluate."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dpcli.cli.app import app
from dpcli.cli.common import console, console_err

_EPILOG = """Examples:

  dpdeblur eval --pred out/ --gt DPDD/ --protocol dpdd --csv scores.csv

  dpdeblur eval --pred out/ --gt ../shared/data/pixel4 --protocol pixel4 --json scores.json

  dpdeblur eval --pred out/ --gt gt/ --lpips vgg --gt-maps gt_maps/
"""

_HEAD = {"psnr": "PSNR (dB)", "ssim": "SSIM", "mae": "MAE", "lpips_alex": "LPIPS (AlexNet)",
         "lpips_vgg": "LPIPS (VGG)", "map_spearman": "map Spearman", "map_aiwe1": "map AIWE1",
         "map_aiwe2": "map AIWE2", "map_mae_px": "map MAE (px)"}


def _fmt(key: str, value: float) -> str:
    return f"{value:.2f}" if key == "psnr" else f"{value:.4f}"


@app.command("eval", epilog=_EPILOG)
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
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the per-image table + mean to this CSV."),
    json_path: Optional[Path] = typer.Option(None, "--json", help='Write {"images": [...], "mean": {...}} here.'),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --csv/--json file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the mean line."),
) -> None:
    """Score predictions against ground truth: PSNR, SSIM, MAE (+ LPIPS, defocus-map metrics).

    PSNR = 10 log10(1/MSE) per image then the plain mean; SSIM = scikit-image defaults with
    data_range=1 (7x7 uniform window), channels averaged; MAE on [0, 1]. The bit depth of every
    file is reported (published DPDD tables use 16-bit).
    """
    from dpcli.errors import OutputError
    from dpcli.io.images import atomic_write_bytes
    from dpcli.metrics import lpips as L
    from dpcli.metrics.evaluate import evaluate_folders

    net = None
    if lpips == "auto":
        net = "alex" if L.weights_available("alex") else None
    elif lpips != "none":
        net = lpips
    for path in (csv_path, json_path):
        if path is not None and path.exists() and not overwrite:
            raise OutputError("exists (use --overwrite)", path)
    report = evaluate_folders(pred, gt, protocol=protocol, lpips_net=net, maps_dir=maps, gt_maps_dir=gt_maps)
    if lpips == "auto" and net is None:
        report.notes.append("LPIPS skipped: no converted weights (run `dpdeblur convert-lpips`)")
    mean = report.mean
    keys = list(mean)
    if not quiet:
        table = Table(title=f"dpdeblur eval ({report.protocol} protocol, {len(report.rows)} images)")
        table.add_column("image")
        for k in keys:
            table.add_column(_HEAD.get(k, k), justify="right")
        table.add_column("bits pred/GT", justify="right")
        table.add_column("notes")
        for r in report.rows:
            table.add_row(r.name, *[_fmt(k, r.metrics[k]) if k in r.metrics else "" for k in keys], r.bits,
                          "; ".join(r.notes))
        table.add_section()
        table.add_row("[bold]mean[/bold]", *[f"[bold]{_fmt(k, mean[k])}[/bold]" for k in keys], "", "")
        console.print(table)
        for note in report.notes:
            console_err.print(f"[dim]{note}[/dim]", highlight=False)
    else:
        console.print("mean: " + ", ".join(f"{_HEAD.get(k, k)} {_fmt(k, v)}" for k, v in mean.items()))
    if report.unmatched_pred:
        console_err.print(f"[yellow]{len(report.unmatched_pred)} prediction(s) without GT:[/yellow] "
                          + ", ".join(report.unmatched_pred), highlight=False, soft_wrap=True)
    if report.unmatched_gt:
        console_err.print(f"[yellow]{len(report.unmatched_gt)} GT image(s) without prediction:[/yellow] "
                          + ", ".join(report.unmatched_gt), highlight=False, soft_wrap=True)
    if json_path is not None:
        atomic_write_bytes(json_path, json.dumps(report.to_json(), indent=2).encode(), overwrite=overwrite)
    if csv_path is not None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["name", *keys, "bits", "notes"])
        for r in report.rows:
            writer.writerow([r.name, *[f"{r.metrics[k]:.6f}" if k in r.metrics else "" for k in keys], r.bits,
                             "; ".join(r.notes)])
        writer.writerow(["mean", *[f"{mean[k]:.6f}" for k in keys], "", ""])
        atomic_write_bytes(csv_path, buf.getvalue().encode(), overwrite=overwrite)
