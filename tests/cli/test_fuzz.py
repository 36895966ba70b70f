"""Issue 17 item 3: a property-based fuzz test. Valid small files are mutated (truncated, bytes
flipped or inserted, headers rewritten, NaN written into float data); the CLI must answer with exit
code 0 (the file still decodes), or 1/2 with exactly one line on stderr, no traceback, no exception
class name and no partial output."""
from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dpcli.io.images import write_image  # noqa: E402

LEAK = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b|File \"|line \d+, in ")
_rng = np.random.default_rng(17)
GT = _rng.random((3, 64, 96)).astype(np.float32)


def _valid_files(folder: Path) -> dict[str, bytes]:
    """Small valid files of every kind the tools read."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, depth in (("a8.png", 8), ("a16.png", 16), ("a.jpg", 8)):
        files[name] = write_image(folder / name, GT, depth).read_bytes()
    tifffile.imwrite(folder / "f.tiff", GT.transpose(1, 2, 0).copy(), photometric="rgb")
    files["f.tiff"] = (folder / "f.tiff").read_bytes()
    return files


VALID = _valid_files(Path(__import__("tempfile").mkdtemp(prefix="dpdeblur-fuzz-")))


def _set_png_size(data: bytes, width: int, height: int) -> bytes:
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return data[:16] + bytes(ihdr) + crc + data[33:]


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[name])
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "header", "empty", "nan"]))
    if kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif kind == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    elif kind == "header" and name.endswith(".png"):
        data = bytearray(_set_png_size(bytes(data), draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))))
    elif kind == "empty":
        data = bytearray()
    elif kind == "nan" and name == "f.tiff":
        import io

        import tifffile

        arr = GT.transpose(1, 2, 0).copy()
        flat = arr.reshape(-1)
        for i in draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=flat.size)):
            flat[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, photometric="rgb")
        data = bytearray(buf.getvalue())
    return name, bytes(data)


def _check(res, output: Path) -> None:
    assert res.code in (0, 1, 2), (res.code, res.err)
    assert not LEAK.search(res.err), res.err
    if res.code == 0:
        return
    errors = [line for line in res.err_lines if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error:"), res.err
    assert not output.exists() or not any(p for p in output.rglob("*") if p.is_file() and
                                          ".dpdeblur" not in p.parts), "partial output"


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated())
def test_eval_on_mutated_predictions(dpdeblur, tmp_path_factory, case):
    name, data = case
    root = tmp_path_factory.mktemp("eval")
    (root / "pred").mkdir()
    (root / "gt").mkdir()
    write_image(root / "gt" / f"{Path(name).stem}.png", GT, 16)
    (root / "pred" / name).write_bytes(data)
    out = root / "scores"
    res = dpdeblur("eval", "--pred", root / "pred", "--gt", root / "gt", "--lpips", "none",
                   "--json-file", out / "s.json", "--csv", out / "s.csv")
    _check(res, out)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated(), side=st.sampled_from(["L", "R"]))
def test_run_on_a_mutated_view(dpdeblur, tmp_path_factory, case, side):
    name, data = case
    suffix = Path(name).suffix
    root = tmp_path_factory.mktemp("run")
    other = "R" if side == "L" else "L"
    (root / f"scene_{side}{suffix}").write_bytes(data)
    (root / f"scene_{other}{suffix}").write_bytes(VALID[name])
    out = root / "out"
    res = dpdeblur("run", root / f"scene_L{suffix}", root / f"scene_R{suffix}", "-o", out, "--method", "classical",
                   "--threads", "1")
    _check(res, out)
