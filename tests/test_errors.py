"""User-facing errors (dpcli/errors.py): one line with the path first, and the CLI's exit codes."""
from __future__ import annotations

from pathlib import Path

import pytest

from dpcli.errors import DiskFullError, DpError, InputError, ModelError, OutputError


def test_one_line_puts_the_path_first_and_is_the_message():
    err = InputError("not a DP pair", path="shots/a_L.png")
    assert err.one_line() == str(err) == "shots/a_L.png: not a DP pair"
    assert err.path == Path("shots/a_L.png") and err.message == "not a DP pair"
    bare = ModelError("unknown model 'x'")
    assert bare.one_line() == str(bare) == "unknown model 'x'" and bare.path is None


@pytest.mark.parametrize("cls, code", [(DpError, 2), (InputError, 2), (OutputError, 2), (ModelError, 2),
                                       (DiskFullError, 1)])
def test_exit_codes_bad_input_is_2_a_stopped_folder_run_is_1(cls, code):
    assert cls("x").exit_code == code


def test_disk_full_is_an_output_error_that_keeps_the_bytes_it_needed():
    err = DiskFullError("no space left", path=Path("/out/x.png"), needed=12_345)
    assert isinstance(err, OutputError) and isinstance(err, DpError)
    assert err.needed == 12_345 and str(err) == "/out/x.png: no space left"
    with pytest.raises(OutputError, match="no space left"):
        raise err
