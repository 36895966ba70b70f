"""``OUT/report.html``: one self-contained page to judge a run by eye, offline.

Per item: the input beside the output with a before/after slider, the defocus map where there is
one, the method, the L/R order, the time and, where a ground truth was given, the scores of the
input and of the output. Images are inlined as data URIs (scaled JPEG previews; PNG for maps), the
style and the few lines of script are in the page: it loads nothing from anywhere.

>>> # write_report(Path("out/report.html"), [ReportItem("scene", inputs=[...], output=...)])
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

PREVIEW_MAX_SIDE = 960  # px: enough to judge sharpness on a screen, small enough for a page of many


@dataclass
class ReportItem:
    """One item of the report. ``inputs``: its input files (a pair's views are shown combined), or
    ``input_view``: how to load the input as the command read it (raw levels applied), (C, H, W);
    ``output``: the deblurred image; ``defocus``: the defocus-map preview PNG; ``scores``:
    metric -> (input, output) where a ground truth was given."""

    name: str
    inputs: Sequence[Path] = ()
    output: Path | None = None
    defocus: Path | None = None
    status: str = "ok"
    message: str = ""
    method: str = ""
    orientation: str = ""
    seconds: float = 0.0
    scores: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    input_view: Callable[[], np.ndarray] | None = None


def _display(images: list[np.ndarray]) -> list[np.ndarray]:
    """(C, H, W) float images -> (H, W, 3) uint8 for the screen, all with one exposure: linear data
    (a dark raw plane) is brightened by the first image's 99.5th percentile and sRGB-encoded, so the
    input and the output compare as they are."""
    from dpcli.optics import linear_to_srgb

    first = np.nan_to_num(images[0])
    top = float(np.percentile(first, 99.5)) if first.size else 1.0
    linear = top < 0.35  # sRGB photos fill the range; linear raw planes sit low
    out = []
    for img in images:
        img = np.clip(np.nan_to_num(img), 0, None)
        if linear:
            import torch

            img = linear_to_srgb(torch.from_numpy(np.clip(img * (0.9 / max(top, 1e-6)), 0, 1))).numpy()
        img = np.clip(img, 0, 1)
        if img.shape[0] == 1:
            img = np.repeat(img, 3, 0)
        out.append(np.round(img[:3].transpose(1, 2, 0) * 255).astype(np.uint8))
    return out


def _data_uri(pixels: np.ndarray, fmt: str = "JPEG") -> str:
    from PIL import Image

    img = Image.fromarray(pixels)
    scale = PREVIEW_MAX_SIDE / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


def _read(path: Path) -> np.ndarray:
    from dpcli.io.images import read_image

    return read_image(path).data


def _input_view(paths: Sequence[Path], like: tuple[int, int] | None) -> np.ndarray | None:
    """The blurry input as a photographer sees it: a pair's views averaged, a single image as is."""
    views = []
    for path in paths:
        try:
            views.append(_read(Path(path)))
        except Exception:  # a raw file or another input the reader cannot show: no preview of it
            return None
    views = [v for v in views if like is None or v.shape[-2:] == like]
    if not views or any(v.shape != views[0].shape for v in views):
        return None
    return np.mean(views, axis=0) if len(views) > 1 else views[0]


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#222;background:#fafafa}
h1{font-size:22px}section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:18px 0}
h2{font-size:17px;margin:0 0 6px}.meta{color:#555;margin-bottom:8px}.failed h2{color:#b00}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}figure{margin:0;flex:1 1 420px;max-width:100%}
figcaption{color:#555;font-size:13px;margin-top:4px}.cmp{position:relative;line-height:0;user-select:none}
.cmp img{display:block;width:100%;height:auto}.cmp .before{position:absolute;left:0;top:0;clip-path:inset(0 50% 0 0)}
.cmp input{position:absolute;left:0;bottom:8px;width:100%;margin:0}
.tag{position:absolute;top:6px;background:#000a;color:#fff;font-size:12px;line-height:1.4;padding:1px 6px;border-radius:3px}
.tag.l{left:6px}.tag.r{right:6px}table{border-collapse:collapse;margin:6px 0}
td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}th:first-child,td:first-child{text-align:left}
.map{flex:0 1 420px}.map img{width:100%;height:auto;display:block}
"""

_SCRIPT = """
document.querySelectorAll('.cmp input').forEach(function (slider) {
  var before = slider.parentNode.querySelector('.before');
  function show() { before.style.clipPath = 'inset(0 ' + (100 - slider.value) + '% 0 0)'; }
  slider.addEventListener('input', show);
  show();
});
"""


def _section(item: ReportItem) -> str:
    esc = html.escape
    meta = [f"method {esc(item.method)}" if item.method else "", f"L/R order {esc(item.orientation)}"
            if item.orientation else "", f"{item.seconds:.1f} s" if item.seconds else "",
            "" if item.status == "ok" else esc(item.status)]
    parts = [f'<section class="{esc(item.status)}" id="{esc(item.name)}"><h2>{esc(item.name)}</h2>',
             f'<div class="meta">{" &middot; ".join(m for m in meta if m)}</div>']
    if item.message and item.status != "ok":
        parts.append(f'<p>{esc(item.message)}</p>')
    if item.scores:
        cell = lambda k, v: "" if v is None else format(v, SCORE_FORMATS.get(k, ".4f"))  # noqa: E731
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{cell(k, a)}</td><td>{cell(k, b)}</td></tr>"
                       for k, (a, b) in item.scores.items())
        parts.append(f"<table><tr><th>vs ground truth</th><th>input</th><th>output</th></tr>{rows}</table>")
    output = _read(item.output) if item.output is not None else None
    shown = None
    if item.input_view is not None:
        try:
            shown = np.asarray(item.input_view(), np.float32)
        except Exception:  # noqa: BLE001 - an input that no longer loads: no preview of it
            shown = None
        if shown is not None and output is not None and shown.shape[-2:] != output.shape[-2:]:
            shown = None
    elif item.inputs:
        shown = _input_view(item.inputs, None if output is None else output.shape[-2:])
    parts.append('<div class="row">')
    if output is not None and shown is not None:
        before, after = (_data_uri(p) for p in _display([shown, output]))
        parts.append(f'<figure><div class="cmp"><img class="after" src="{after}" alt="output">'
                     f'<img class="before" src="{before}" alt="input">'
                     '<span class="tag l">input</span><span class="tag r">output</span>'
                     '<input type="range" min="0" max="100" value="50" aria-label="input / output"></div>'
                     f'<figcaption>drag: input (left) | output (right) &mdash; {esc(Path(item.output).name)}'
                     '</figcaption></figure>')
    elif output is not None or shown is not None:
        what = "output" if output is not None else "input"
        (pixels,) = _display([output if output is not None else shown])
        parts.append(f'<figure><img style="width:100%" src="{_data_uri(pixels)}" alt="{what}">'
                     f'<figcaption>{what}</figcaption></figure>')
    if item.defocus is not None:
        (pixels,) = _display([_read(item.defocus)])
        parts.append(f'<figure class="map"><img src="{_data_uri(pixels, "PNG")}" alt="defocus map">'
                     '<figcaption>defocus map: signed blur radius (px), red behind the focal plane, blue in '
                     'front, white in focus</figcaption></figure>')
    parts.append("</div></section>")
    return "\n".join(parts)


def render_report(items: Sequence[ReportItem], title: str = "dpdeblur report", note: str = "") -> str:
    """The page as text (see the module docstring)."""
    esc = html.escape
    done = sum(i.status == "ok" for i in items)
    body = "\n".join(_section(i) for i in items)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{_STYLE}</style></head>'
            f'<body><h1>{esc(title)}</h1><p class="meta">{done} of {len(items)} done{esc(note)}</p>\n'
            f'{body}\n<script>{_SCRIPT}</script></body></html>\n')


def write_report(path: Path, items: Sequence[ReportItem], title: str = "dpdeblur report", note: str = "") -> Path:
    """Write :func:`render_report` to ``path`` atomically; returns the path."""
    from dpcli.io.images import atomic_write_bytes

    atomic_write_bytes(Path(path), render_report(items, title, note).encode(), overwrite=True)
    return Path(path)


# ------------------------------------------------------------------------------ from a batch's results
SCORES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "mae": "MAE"}
# one precision per score, in every row (as the README's tables: 32.20 dB / 0.909 / 0.0135)
SCORE_FORMATS = {"PSNR (dB)": ".2f", "SSIM": ".3f", "MAE": ".4f"}


def _main_output(outputs: Sequence[str]) -> tuple[Path | None, Path | None]:
    """(deblurred image, defocus preview) among an item's outputs."""
    from dpcli.io.images import is_image_file

    image = defocus = None
    for out in map(Path, outputs):
        if out.name.endswith("_defocus.png"):
            defocus = defocus or out
        elif out.is_file() and is_image_file(out) and not out.stem.endswith(("_defocus", "_kernels", "_confidence")):
            image = image or out
    return image, defocus


def ground_truth_scores(folder: Path, items: Sequence, gt: Path, input_view: Callable | None = None,
                        name_of: Callable = lambda it: it.name) -> tuple[dict[str, dict], str]:
    """name -> {metric: (input, output)} against the ground truth in ``gt``, as ``dpdeblur eval``
    scores them (the input: ``input_view(item)``, by default the item's combined view read as a
    plain file: the blurry photo); and a note when nothing matched. ``items`` are the run's
    inputs (:mod:`dpcli.io.pairs` items)."""
    import tempfile

    from dpcli.errors import DpError
    from dpcli.io.images import write_image
    from dpcli.io.pairs import BadInput, load_single
    from dpcli.metrics.evaluate import evaluate_folders

    try:
        outputs = {Path(r.pred).stem: r.metrics for r in evaluate_folders(folder, gt).rows}
    except DpError as exc:
        return {}, f"; ground truth: {exc.one_line()}"
    inputs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dpdeblur-report-") as tmp:
        for item in items:
            if isinstance(item, BadInput) or name_of(item) not in outputs:
                continue
            try:
                image = input_view(item) if input_view is not None else load_single(item, with_target=False)[0]
                write_image(Path(tmp) / f"{name_of(item)}.tiff", np.asarray(image, np.float32), 32)
            except Exception:  # noqa: BLE001 - an input without a combined view has no input score
                continue
        try:
            inputs = {Path(r.pred).stem: r.metrics for r in evaluate_folders(tmp, gt).rows}
        except DpError:
            inputs = {}
    scores = {name: {label: (inputs.get(name, {}).get(key), metrics.get(key)) for key, label in SCORES.items()
                     if key in metrics} for name, metrics in outputs.items()}
    return scores, ""


def report_items(results: Sequence, inputs_of: dict[str, Sequence[Path]], scores: dict[str, dict],
                 views: dict[str, Callable[[], np.ndarray]] | None = None) -> list[ReportItem]:
    """:class:`ReportItem` of each batch result (:class:`dpcli.cli.result.ItemResult`); ``views``:
    name -> how to load its input as the command read it."""
    items = []
    for r in results:
        image, defocus = _main_output(r.outputs if r.status != "failed" else [])
        items.append(ReportItem(r.name, inputs=inputs_of.get(r.name, ()), output=image, defocus=defocus,
                                status=r.status, message=r.message, method=str(r.details.get("method", "")),
                                orientation=str(r.details.get("orientation", "")), seconds=r.seconds,
                                scores=scores.get(r.name, {}), input_view=(views or {}).get(r.name)))
    return items
