"""The console entry point on bad input, through a small command built on the IO + batch-runner API.

The real commands (run, zeroshot, defocus-map) are owned elsewhere; this hidden test command uses the
same pieces they use (discover_inputs, load_single, write_image, run_batch) and the real ``main``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
import typer

import dpcli.cli as cli
from dpcli.cli.app import app
from dpcli.cli.batch import run_batch
from dpcli.cli.result import ItemResult
from dpcli.io.images import write_image
from dpcli.io.pairs import discover_inputs, input_paths, load_single


@pytest.fixture()
def selftest_command():
    def command(inputs: List[Path] = typer.Argument(...), output: Path = typer.Option(..., "-o"),
                quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
        items = discover_inputs(inputs)
        protected = input_paths(items)

        def process(item) -> ItemResult:
            image, _, depth = load_single(item)
            path = write_image(output / f"{item.name}.png", image, min(depth, 16), protected=protected)
            return ItemResult(item.name, outputs=[str(path)])

        raise typer.Exit(run_batch(items, process, lambda i: i.name, quiet=quiet))

    app.command("io-selftest", hidden=True)(command)
    yield
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "io-selftest"]


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["dpdeblur", "io-selftest", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        cli.main()
        sys.exit(0)
    return int(info.value.code or 0), capsys.readouterr().err


def _good(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "a_L.png", np.full((1, 4, 4), 0.2), 8)
    write_image(folder / "a_R.png", np.full((1, 4, 4), 0.4), 8)
    write_image(folder / "b.tiff", np.full((3, 4, 4), 0.4), 32)
    return folder


@pytest.mark.usefixtures("selftest_command")
class TestMain:
    def test_good_folder_exits_0(self, tmp_path, monkeypatch, capsys) -> None:
        code, err = _main(monkeypatch, capsys, _good(tmp_path / "in"), "-o", tmp_path / "out", "-q")
        assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]

    @pytest.mark.parametrize("case", ["missing", "empty", "unsupported", "truncated", "lone", "mismatch",
                                      "no-write"])
    def test_single_bad_input_exits_2(self, tmp_path, monkeypatch, capsys, case: str) -> None:
        out = tmp_path / "out"
        if case == "missing":
            target, name = tmp_path / "nope.png", "nope.png"
        elif case == "empty":
            target, name = tmp_path / "empty", "empty"
            target.mkdir()
        elif case == "unsupported":
            target, name = tmp_path / "doc.pdf", "doc.pdf"
            target.write_bytes(b"%PDF")
        elif case == "truncated":
            target = write_image(tmp_path / "t.png", np.random.default_rng(0).random((3, 32, 32)), 16)
            target.write_bytes(target.read_bytes()[:100])
            name = "t.png"
        elif case == "lone":
            target, name = write_image(tmp_path / "x_left.png", np.zeros((1, 4, 4)), 8), "x_left.png"
        elif case == "mismatch":
            target = write_image(tmp_path / "m_L.png", np.zeros((1, 4, 4)), 8)
            write_image(tmp_path / "m_R.png", np.zeros((1, 4, 5)), 8)
            name = "m_R.png"
        else:
            target = write_image(tmp_path / "ok.png", np.zeros((1, 4, 4)), 8)
            out = tmp_path / "ok.png" / "sub"  # below a regular file: cannot be created, even by root
            name = "ok.png"
        code, err = _main(monkeypatch, capsys, target, "-o", out, "-q")
        assert code == 2, err
        assert name in err and "Traceback" not in err
        error_lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and name in error_lines[0]

    def test_folder_with_one_bad_file_exits_1(self, tmp_path, monkeypatch, capsys) -> None:
        folder = _good(tmp_path / "in")
        (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
        code, err = _main(monkeypatch, capsys, folder, "-o", tmp_path / "out", "-q")
        assert code == 1 and "broken.jpg" in err and "Traceback" not in err
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]

    def test_existing_output_needs_overwrite(self, tmp_path, monkeypatch, capsys) -> None:
        folder = _good(tmp_path / "in")
        assert _main(monkeypatch, capsys, folder / "b.tiff", "-o", tmp_path / "out", "-q")[0] == 0
        code, err = _main(monkeypatch, capsys, folder / "b.tiff", "-o", tmp_path / "out", "-q")
        assert code == 2 and "output exists" in err and "b.png" in err


@pytest.mark.parametrize("case", ["missing", "empty", "lone", "unsupported", "white-sheet"])
def test_run_command_rejects_bad_input_with_exit_2(tmp_path, monkeypatch, capsys, case: str) -> None:
    """The real `dpdeblur run`, on input errors found before any model is loaded."""
    extra: list[str] = []
    if case == "missing":
        target, name = tmp_path / "nope_L.png", "nope_L.png"
    elif case == "empty":
        target, name = tmp_path / "empty", "empty"
        target.mkdir()
    elif case == "lone":
        target, name = write_image(tmp_path / "solo_L.png", np.zeros((1, 4, 4)), 8), "solo_L.png"
    elif case == "unsupported":
        target, name = tmp_path / "notes.txt", "notes.txt"
        target.write_text("hello")
    else:
        target = write_image(tmp_path / "w_L.png", np.zeros((1, 4, 4)), 8)
        write_image(tmp_path / "w_R.png", np.zeros((1, 4, 4)), 8)
        extra, name = ["--black-level", "1024", "--white-sheet-left", str(target)], "white-sheet"
    monkeypatch.setattr(sys, "argv", ["dpdeblur", "run", str(target), "-o", str(tmp_path / "out"), "-q", *extra])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert name in err and "Traceback" not in err
