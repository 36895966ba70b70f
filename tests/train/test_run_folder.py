"""A run folder's record: every run-defining field of TrainRequest is refused on a resume that
changes it (naming its flag), every free one is taken from the record when not given."""
from __future__ import annotations

from dataclasses import fields, replace

import pytest

from dpcli.errors import DpError
from dpcli.train.request import TrainRequest
from dpcli.train.run_folder import FIXED, FREE, read_options, resume_request, save_options


def test_fixed_and_free_are_read_from_the_dataclass() -> None:
    names = [f.name for f in fields(TrainRequest)]
    assert set(FIXED) | set(FREE) < set(names) and not set(FIXED) & set(FREE)
    assert FIXED["model"] == "MODEL" and "out" not in FIXED and "steps" in FREE


def test_the_record_holds_fixed_then_free_fields(tmp_path) -> None:
    save_options(TrainRequest(model="bambnet", out=tmp_path, lr=1e-3), tmp_path)
    assert list(read_options(tmp_path)) == [*FIXED, *FREE]


@pytest.mark.parametrize("name", sorted(FIXED))
def test_a_resume_that_changes_a_fixed_field_names_its_flag(tmp_path, name: str) -> None:
    req = TrainRequest(model="bambnet", out=tmp_path)
    save_options(req, tmp_path)
    with pytest.raises(DpError, match=FIXED[name].split("/")[0]):
        resume_request(replace(req, **{name: "changed"}), given={name})


def test_a_resume_takes_free_fields_from_the_record(tmp_path) -> None:
    save_options(TrainRequest(model="bambnet", out=tmp_path, steps=7, precision="bf16"), tmp_path)
    resumed = resume_request(TrainRequest(model="bambnet", out=tmp_path, steps=9), given={"steps"})
    assert (resumed.steps, resumed.precision) == (9, "bf16")
