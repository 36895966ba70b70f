"""Issue 17 item 3: every bad input is one line in user terms naming the file; nothing leaks."""
from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from dpcli.errors import InputError
from dpcli.io.images import probe_image, read_image, write_image

CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|run_tiled")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, width: int = 30000, height: int = 20000) -> Path:
    """A valid PNG signature and header claiming width x height, with no image data."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + _chunk(b"IEND", b""))
    return path


def _eval_folders(tmp_path: Path, bad_name: str, write_bad) -> tuple[Path, Path]:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    img = np.random.default_rng(0).random((3, 24, 24)).astype(np.float32)
    write_image(gt / f"{Path(bad_name).stem}.png", img, 16)
    write_bad(pred / bad_name, img)
    return pred, gt


BAD_FILES = {
    "zero-byte": ("scene.png", lambda p, img: p.write_bytes(b""), "empty file (0 bytes)"),
    "text": ("scene.png", lambda p, img: p.write_text("not an image at all"), "not a PNG image"),
    "png bomb": ("scene.png", lambda p, img: png_bomb(p), "PNG header claims 30000x20000 pixels"),
    "truncated": ("scene.png", lambda p, img: p.write_bytes(write_image(p, img, 16).read_bytes()[:200]),
                  "cannot decode"),
    "tiff junk": ("scene.tiff", lambda p, img: p.write_bytes(b"II*\x00" + b"\xff" * 40), "corrupt TIFF"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_naming_it(dpdeblur, tmp_path, case):
    name, write, message = BAD_FILES[case]
    pred, gt = _eval_folders(tmp_path, name, write)
    res = dpdeblur("eval", "--pred", pred, "--gt", gt, "--lpips", "none", "--json-file", tmp_path / "s.json")
    assert res.code == 2, res.err
    assert len(res.err_lines) == 1, res.err
    assert name in res.err and message in res.err
    assert not CLASS_NAME.search(res.err)
    assert not (tmp_path / "s.json").exists()  # no partial output


def test_nan_and_inf_in_a_float_tiff_are_counted_and_replaced(dpdeblur, tmp_path):
    import tifffile

    def nan_tiff(path, img):
        data = img.transpose(1, 2, 0).copy()
        data[0, :5] = np.nan
        data[1, 0, 0] = np.inf
        tifffile.imwrite(path, data, photometric="rgb")

    pred, gt = _eval_folders(tmp_path, "scene.tiff", nan_tiff)
    res = dpdeblur("eval", "--pred", pred, "--gt", gt, "--lpips", "none", "--json")
    assert res.code == 0, res.err
    warning = [line for line in res.err_lines if line.startswith("warning:")]
    assert len(warning) == 1 and "scene.tiff" in warning[0]
    assert "16 of 1728 values were NaN or infinite; replaced" in warning[0]
    assert "Warning" not in res.err and "images.py" not in res.err  # no Python warning format
    with pytest.warns(UserWarning):
        data = read_image(pred / "scene.tiff").data
    assert np.isfinite(data).all() and data[:, 0, :5].max() == 0


def test_an_image_of_nan_only_is_refused():
    import tempfile

    import tifffile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nan.tiff"
        tifffile.imwrite(path, np.full((4, 4), np.nan, np.float32))
        with pytest.raises(InputError, match="all 16 values are NaN or infinite"):
            read_image(path)


def test_the_header_is_checked_without_decoding(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png")
    with pytest.raises(InputError, match="holds only"):
        probe_image(bomb)
    ok = write_image(tmp_path / "ok.png", np.zeros((1, 5, 7), np.float32), 8)
    assert probe_image(ok) == (5, 7)
    jpg = write_image(tmp_path / "ok.jpg", np.zeros((3, 9, 11), np.float32), 8)
    assert probe_image(jpg) == (9, 11)
    tif = write_image(tmp_path / "ok.tiff", np.zeros((3, 6, 4), np.float32), 32)
    assert probe_image(tif) == (6, 4)


def test_probe_items_reports_bad_files_before_a_method_is_chosen(tmp_path):
    from dpcli.io.pairs import BadInput, discover_inputs, probe_items

    write_image(tmp_path / "a_L.png", np.zeros((1, 8, 8), np.float32), 8)
    write_image(tmp_path / "a_R.png", np.zeros((1, 8, 9), np.float32), 8)
    (tmp_path / "b.png").write_bytes(b"")
    write_image(tmp_path / "c.png", np.zeros((3, 8, 8), np.float32), 8)
    items = {i.name: i for i in probe_items(discover_inputs([tmp_path]))}
    assert isinstance(items["a"], BadInput) and "size mismatch" in items["a"].message
    assert isinstance(items["b"], BadInput) and "empty file" in items["b"].message
    assert not isinstance(items["c"], BadInput)


def test_unexpected_errors_are_one_line_without_class_names(dpdeblur, monkeypatch, tmp_path):
    import dpcli.cli.eval as eval_cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("dpcli.metrics.evaluate.evaluate_folders", broken)
    res = dpdeblur("eval", "--pred", tmp_path, "--gt", tmp_path)
    assert res.code == 1 and len(res.err_lines) == 1
    assert "float division by zero" in res.err and not CLASS_NAME.search(res.err)
    res = dpdeblur("eval", "--pred", tmp_path, "--gt", tmp_path, "-v")
    assert "Traceback" in res.err  # -v: the details
    assert eval_cli  # imported for the patch target


def test_usage_errors_are_one_line(dpdeblur):
    res = dpdeblur("synth", "--count", "many")
    assert res.code == 2 and len(res.err_lines) == 1 and "--count" in res.err


def test_no_message_carries_an_exception_class_name():
    root = Path(__file__).parents[2] / "dpcli"
    leaks = []
    for path in root.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"type\((exc|e|err|error)\)\.__name__", line):
                leaks.append(f"{path.relative_to(root.parent)}:{n}")
    assert not leaks, leaks
