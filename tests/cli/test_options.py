"""Issue 17 item 2: one option vocabulary, declared once (dpcli.cli.options), checked once."""
from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dpcli.cli.app import DpTyper
from dpcli.cli.options import DeviceOptions, InputOptions, OutputOptions, bundle, with_bundles
from dpcli.errors import DpError


def _toy_app(received: dict) -> DpTyper:
    app = DpTyper()

    @app.command("toy")
    @with_bundles
    def toy(inputs: list[Path] = typer.Argument(...), source: InputOptions = bundle(),
            out: OutputOptions = bundle(required=("folder",)),
            dev: DeviceOptions = bundle(omit=("tile_overlap",), defaults={"tile": 512}),
            extra: int = typer.Option(3, "--extra")) -> None:
        received.update(inputs=inputs, source=source, out=out, dev=dev, extra=extra)

    @app.command("other")
    def other() -> None:
        pass

    return app


def test_a_command_receives_validated_dataclasses(tmp_path):
    got: dict = {}
    sheet_l, sheet_r = tmp_path / "wl.png", tmp_path / "wr.png"
    sheet_l.write_bytes(b"x")
    sheet_r.write_bytes(b"x")
    res = CliRunner().invoke(_toy_app(got), ["toy", "a", "b", "-o", str(tmp_path / "o"), "--swap-lr", "--black-level",
                                             "1024", "--white-sheet", str(sheet_l), str(sheet_r), "--linear",
                                             "--tile", "0", "-q", "--extra", "5"])
    assert res.exit_code == 0, res.output
    assert got["source"] == InputOptions(black_level=1024, white_sheet=(sheet_l, sheet_r), srgb=False, swap_lr=True)
    assert got["out"].folder == tmp_path / "o" and got["out"].quiet and not got["out"].verbose
    assert got["dev"].device == "cpu"  # resolved from "auto" on this machine
    assert got["dev"].tile == 0 and got["extra"] == 5
    assert got["source"].raw_options().output == "linear"  # --linear also renders DP RAW linear


def test_defaults_and_flags_not_given_stay_none(tmp_path):
    got: dict = {}
    res = CliRunner().invoke(_toy_app(got), ["toy", "a", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert got["source"].srgb is None and got["source"].swap_lr is None  # the command (or profile) decides
    assert got["dev"].tile == 512  # bundle(defaults=...)
    res = CliRunner().invoke(_toy_app(got), ["toy", "a", "-o", str(tmp_path), "--tile-overlap", "8"])
    assert res.exit_code == 2  # omitted from this command


@pytest.mark.parametrize("args, message", [
    (["--tile", "7"], "--tile 7: must be 0 (one full-frame pass) or at least 64 px"),
    (["--tile", "-1"], "--tile -1: must be 0"),
    (["--threads", "-2"], "--threads -2: must be 0"),
    (["--precision", "fp8"], "--precision fp8: expected auto, fp32, bf16 or fp16"),
    (["--precision", "fp16"], "--precision fp16 needs a GPU"),
    (["--device", "cuda"], "--device cuda: no CUDA device"),
    (["--device", "tpu"], "--device tpu: unknown device"),
    (["--bit-depth", "12"], "--bit-depth 12: expected input, 8, 16 or 32f"),
    (["-q", "-v"], "--quiet and --verbose contradict"),
    (["--black-level", "-3"], "--black-level -3: must be 0 or more"),
    (["--black-level", "1024", "--white-level", "1000"], "--white-level 1000: must be above the black level"),
    (["--camera", " "], "--camera: give a profile name"),
])
def test_every_value_is_checked_once_with_the_option_and_its_range(tmp_path, args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    got: dict = {}
    res = CliRunner().invoke(_toy_app(got), ["toy", "a", "-o", str(tmp_path), *args])
    assert isinstance(res.exception, DpError) and message in str(res.exception), (res.exception, res.output)
    assert got == {}  # refused before the command body ran


def test_white_sheet_is_one_option_with_two_files(tmp_path):
    got: dict = {}
    res = CliRunner().invoke(_toy_app(got), ["toy", "a", "-o", str(tmp_path), "--black-level", "1",
                                             "--white-sheet", str(tmp_path / "missing_l.png"), str(tmp_path / "r.png")])
    assert isinstance(res.exception, DpError) and "missing_l.png" in str(res.exception)
    res = CliRunner().invoke(_toy_app(got), ["toy", "a", "-o", str(tmp_path), "--white-sheet", "a.png", "b.png"])
    assert "--white-sheet needs raw planes" in str(res.exception)


def test_fp16_on_cpu_is_refused_the_same_way_whatever_the_device_spelling():
    messages = set()
    for device in ("cpu", "auto"):
        with pytest.raises(DpError) as info:
            DeviceOptions(device=device, precision="fp16").validate()
        messages.add(str(info.value).split(";")[0])
    assert messages == {"--precision fp16 needs a GPU"}


def test_output_folder_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(DpError, match="must be a folder"):
        OutputOptions(folder=f).validate()
