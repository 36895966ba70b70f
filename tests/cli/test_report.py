"""Issue 26 item 4: `--report` writes OUT/report.html, one self-contained page (images inlined,
nothing loaded from anywhere) per item: input | output with a before/after slider, the defocus map,
the method, L/R order, time and the scores against a ground truth; the slow test opens it in a
real headless Chromium: no console error, every image shows."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dpcli.io.images import write_image

CHROMIUM = Path("/usr/bin/chromium")


def _scene(root: Path) -> tuple[Path, Path]:
    """A blurred DP pair (classical-sized), a single image and the pair's sharp ground truth."""
    import torch

    from dpcli.optics import blur, dp_kernels

    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(1, 1, 24, 32, generator=g), size=(96, 128), mode="bicubic")
    sharp = (0.2 + 0.6 * base.clamp(0, 1)).repeat(1, 3, 1, 1)
    kl, kr = dp_kernels(torch.tensor([3.0]))
    pairs, gt = root / "in", root / "gt"
    pairs.mkdir(parents=True)
    gt.mkdir()
    write_image(pairs / "scene_L.png", blur(sharp, kl[None])[0].clamp(0, 1).numpy(), 8)
    write_image(pairs / "scene_R.png", blur(sharp, kr[None])[0].clamp(0, 1).numpy(), 8)
    write_image(pairs / "photo.png", sharp[0].numpy(), 8)  # a single image: classical cannot, it fails
    write_image(gt / "scene.png", sharp[0].numpy(), 8)
    return pairs, gt


@pytest.fixture
def report(dpdeblur, tmp_path) -> Path:
    pairs, gt = _scene(tmp_path)
    out = tmp_path / "out"
    res = dpdeblur("run", pairs, "-o", out, "--method", "classical", "--defocus-map", "--report", "--gt", gt,
                   "--threads", 1)
    assert res.code == 1  # the single image failed (classical needs pairs); the page says so
    assert "report.html" in res.err
    return out / "report.html"


def test_report_is_one_self_contained_page_with_what_a_user_judges(report):
    page = report.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:|[\w./-]+\.(png|jpg|css|js))""", page, re.I)
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(sources) == 4 and all(s.startswith("data:image/") for s in sources)  # in, out, map; failed: in
    assert 'type="range"' in page and "clip-path" in page  # the before/after slider
    section = page[page.index('id="scene"'):page.index('id="photo"')]
    assert "method classical" in section and "L/R order" in section and " s<" in section.replace("&middot;", "<")
    scores = dict(re.findall(r"<tr><td>PSNR \(dB\)</td><td>([\d.]+)</td><td>([\d.]+)</td>", section))
    (before, after), = scores.items()
    assert float(after) > float(before)  # deblurred beats its blurry input
    failed = page[page.index('id="photo"'):]
    assert "failed" in failed and "pair" in failed  # the failed item and why


def test_report_previews_are_scaled(dpdeblur, tmp_path):
    from dpcli.cli.report import PREVIEW_MAX_SIDE, ReportItem, render_report

    big = tmp_path / "big.png"
    write_image(big, np.random.default_rng(0).random((3, 1500, 2000)).astype(np.float32), 8)
    page = render_report([ReportItem("big", inputs=[big], output=big)])
    import base64
    import io

    from PIL import Image

    for uri in re.findall(r'src="data:image/\w+;base64,([^"]+)"', page):
        assert max(Image.open(io.BytesIO(base64.b64decode(uri))).size) == PREVIEW_MAX_SIDE


@pytest.mark.slow
def test_report_loads_in_headless_chromium_with_every_image_shown(report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (Debian: apt-get install chromium)")
    probe = tmp_path / "probe.html"  # the page + a watcher: errors and image sizes land in the DOM
    watcher = ("<script>window.__errors=[];addEventListener('error',function(e){__errors.push(String(e.message))});"
               "var ce=console.error;console.error=function(){__errors.push([].join.call(arguments,' '));"
               "ce.apply(console,arguments)};addEventListener('load',function(){var i=document.images,bad=[];"
               "for(var k=0;k<i.length;k++){if(!(i[k].complete&&i[k].naturalWidth>0))bad.push(k)}"
               "document.body.setAttribute('data-images',i.length);document.body.setAttribute('data-broken',"
               "bad.join(','));document.body.setAttribute('data-errors',__errors.join('|'))});</script>")
    probe.write_text(report.read_text().replace("<head>", "<head>" + watcher, 1))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]

    def chromium(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
        return subprocess.run([str(CHROMIUM), *flags, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120)

    dom = chromium("--dump-dom", probe.as_uri())
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attrs.get("images") == "4" and attrs.get("broken") == "" and attrs.get("errors") == "", attrs
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", dom.stderr), dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    chromium("--window-size=1200,1600", f"--screenshot={shot}", report.as_uri())
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.std() > 10  # a page with pictures, not a blank one
    shutil.copy(shot, report.parent / "screenshot.png")  # for a look by eye when run by hand


def test_report_reads_raw_inputs_as_the_run_does(dpdeblur, tmp_path):
    """Raw planes (counts above a black level) are shown and scored after the levels, like the
    output: the input's score is that of the photo, not of the counts."""
    rng = np.random.default_rng(1)
    sharp = np.clip(np.kron(rng.random((1, 12, 16)), np.ones((1, 8, 8))), 0, 1).astype(np.float32)
    counts = (1024 + sharp * (16383 - 1024)) / 65535
    (tmp_path / "raw").mkdir()
    (tmp_path / "gt").mkdir()
    write_image(tmp_path / "raw" / "s_L.png", counts, 16)
    write_image(tmp_path / "raw" / "s_R.png", counts, 16)
    write_image(tmp_path / "gt" / "s.png", sharp, 16)
    res = dpdeblur("run", tmp_path / "raw", "-o", tmp_path / "out", "--method", "classical", "--black-level", 1024,
                   "--white-level", 16383, "--report", "--gt", tmp_path / "gt", "--threads", 1, "-q")
    assert res.code == 0, res.err
    page = (tmp_path / "out" / "report.html").read_text()
    before, _ = re.search(r"<tr><td>PSNR \(dB\)</td><td>([\d.]+)</td><td>([\d.]+)</td>", page).groups()
    assert float(before) > 25  # the views are the ground truth once the levels are applied (the counts: < 15)


def test_gt_without_report_or_missing_is_refused_before_any_work(dpdeblur, tmp_path):
    pairs, gt = _scene(tmp_path)
    alone = dpdeblur("run", pairs, "-o", tmp_path / "out", "--method", "classical", "--gt", gt)
    assert alone.code == 2 and "--report" in alone.err and not (tmp_path / "out").exists()
    missing = dpdeblur("run", pairs, "-o", tmp_path / "out", "--method", "classical", "--report", "--gt",
                       tmp_path / "nothing")
    assert missing.code == 2 and "nothing" in missing.err and not (tmp_path / "out").exists()
