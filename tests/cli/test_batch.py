"""The batch-runner contract on bad input: one line naming the file; exit 2 alone, 1 in a folder run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dpcli.cli.batch import run_batch
from dpcli.cli.result import ItemResult
from dpcli.cli.options import InputOptions
from dpcli.errors import DpError
from dpcli.io.images import write_image
from dpcli.io.pairs import discover_inputs, input_paths, load_single


def _process(out_dir: Path, protected: set[Path], suffix: str = "_out"):
    def process(item) -> ItemResult:
        image, _, depth = load_single(item)
        path = write_image(out_dir / f"{item.name}{suffix}.png", image, depth, protected=protected,
                           overwrite=not suffix)
        return ItemResult(name=item.name, outputs=[str(path)])
    return process


def _run(paths, out_dir: Path, capsys, suffix: str = "_out", **kwargs) -> tuple[int, str, str]:
    items = discover_inputs(paths)
    code = run_batch(items, _process(out_dir, input_paths(items), suffix), lambda i: i.name, **kwargs)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        write_image(folder / f"{name}_L.png", np.full((1, 4, 4), 0.3), 8)
        write_image(folder / f"{name}_R.png", np.full((1, 4, 4), 0.5), 8)
    write_image(folder / "c.png", np.full((3, 4, 4), 0.5), 16)
    return folder


@pytest.mark.parametrize("break_it", ["truncated", "lone", "mismatch"])
def test_folder_run_goes_past_a_bad_file(tmp_path: Path, capsys, break_it: str) -> None:
    folder = _folder(tmp_path)
    if break_it == "truncated":
        bad = folder / "c.png"
        bad.write_bytes(bad.read_bytes()[:40])
    elif break_it == "lone":
        bad = folder / "b_L.png"
        (folder / "b_R.png").unlink()
    else:
        bad = folder / "b_R.png"
        write_image(bad, np.zeros((1, 5, 4)), 8, overwrite=True)
    code, _, err = _run([folder], tmp_path / "out", capsys, quiet=True)
    assert code == 1
    assert bad.name in err and "Traceback" not in err
    assert len(list((tmp_path / "out").iterdir())) == 2  # the good items were written


def test_single_bad_file_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, _, err = _run([bad], tmp_path / "out", capsys, quiet=True)
    assert code == 2 and "broken.png" in err and "corrupt" in err
    lone = write_image(tmp_path / "x_L.png", np.zeros((1, 2, 2)), 8)
    code, _, err = _run([lone], tmp_path / "out", capsys, quiet=True)
    assert code == 2 and "x_L.png" in err and "lone left view" in err


def test_existing_output_and_input_protection(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    assert _run([folder], tmp_path / "out", capsys, quiet=True)[0] == 0
    code, _, err = _run([folder], tmp_path / "out", capsys, quiet=True)  # second run: outputs exist
    assert code == 1 and "output exists" in err
    # An output that would land on an input is refused, even with --overwrite.
    before = (folder / "c.png").read_bytes()
    code, _, err = _run([folder / "c.png"], folder, capsys, suffix="", quiet=True)
    assert code == 2 and "c.png: refusing to overwrite an input" in err
    assert (folder / "c.png").read_bytes() == before


def test_no_write_permission_in_a_run(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    code, _, err = _run([folder], blocker / "out", capsys, quiet=True)
    assert code == 1 and "cannot write" in err and "blocker" in err


def test_json_summary_lists_the_failure(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    (folder / "c.png").write_bytes(b"junk")
    code, out, _ = _run([folder], tmp_path / "out", capsys, json_summary=True)
    summary = json.loads(out)
    assert code == 1 and summary["counts"] == {"ok": 2, "skipped": 0, "failed": 1}
    failed = [i for i in summary["items"] if i["status"] == "failed"]
    assert failed[0]["name"] == "c" and "c.png" in failed[0]["message"]


def test_raw_option_checks(tmp_path: Path) -> None:
    with pytest.raises(DpError, match="--white-sheet needs raw planes"):
        InputOptions(white_sheet=(tmp_path / "a.png", tmp_path / "b.png")).validate()
    with pytest.raises(DpError, match="w_l.png: --white-sheet: no such file"):
        InputOptions(black_level=1024, white_sheet=(tmp_path / "w_l.png", tmp_path / "w_r.png")).validate()
    assert InputOptions(black_level=1024).validate().raw_options().black_level == 1024


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        write_image(folder / f"p{i:02d}.png", np.full((3, 4, 4), i / n), 8)
    return folder


def test_a_full_disk_stops_the_run_and_says_what_the_rest_needs(tmp_path: Path, capsys, monkeypatch) -> None:
    """The first "No space left on device" ends the run (no more computing to fail each item), with no
    partial file, how much the items left need, and a non-zero exit; the same run later resumes."""
    import errno
    import os

    folder = _photos(tmp_path / "in", 10)
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("dpcli.io.images.os.replace", replace)
    items = discover_inputs([folder])
    seen = []
    process = _process(tmp_path / "out", input_paths(items))
    code = run_batch(items, lambda item: seen.append(item.name) or process(item), lambda i: i.name, quiet=True)
    err = capsys.readouterr().err
    assert code == 1 and seen == ["p00", "p01", "p02", "p03"]  # stopped at the first full-disk error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p00_out.png", "p01_out.png", "p02_out.png"]
    each = sum(p.stat().st_size for p in (tmp_path / "out").iterdir()) / 3  # the mean output of this run
    assert f"stopped; the 7 items left need about {7 * each:.0f} bytes (" in " ".join(err.split())
    assert "No space left on device" in err and "Traceback" not in err


def test_a_long_run_summary_is_counts_failures_and_the_slowest(tmp_path: Path, capsys) -> None:
    """Past a screenful: no row per item, but the counts, every failure in full, the slowest few; the
    full table in OUT/summary.json."""
    from types import SimpleNamespace

    folder = _photos(tmp_path / "in", 25)
    (folder / "p07.png").write_bytes(b"junk")
    items = discover_inputs([folder])
    process = _process(tmp_path / "out", input_paths(items))

    def timed(item):
        result = process(item)
        result.seconds = 100.0 if item.name == "p13" else 1.0
        return result

    out = SimpleNamespace(quiet=False, verbose=False, json=False, report=False, folder=tmp_path / "out")
    code = run_batch(items, timed, lambda i: i.name, out=out)
    err = capsys.readouterr().err
    assert code == 1
    assert "summary: 25 items, 24 done, 0 skipped (done earlier), 1 failed" in err
    assert "the 5 slowest" in err and "p13" in err and "p21" not in err.replace("p21_out", "")
    message = err[err.index("1 of 25 failed:"):].splitlines()[1:]
    assert len(message) == 1 and "p07.png: not a PNG image" in message[0]  # the whole message, one line
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["items"]) == 25 and summary["counts"] == {"ok": 24, "skipped": 0, "failed": 1}


def test_a_short_summary_keeps_error_messages_out_of_the_table(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    (folder / "c.png").write_bytes(b"junk")
    code, _, err = _run([folder], tmp_path / "out", capsys)
    table = err[err.index("output / message"):err.index("1 of 3 failed")]
    assert code == 1 and "error below" in table and "not a PNG" not in table
    after = err[err.index("1 of 3 failed"):].splitlines()
    assert len(after) == 2 and "c.png: not a PNG image" in after[1]
