"""Issue 17 item 1: outputs are keyed on what made them; conflicts are found before any computation."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpcli.cli.batch import run_batch
from dpcli.cli.output_plan import OutputPlan
from dpcli.cli.result import ItemResult
from dpcli.cli.options import OutputOptions
from dpcli.errors import OutputError


@dataclass
class Item:
    name: str
    path: Path

    @property
    def paths(self) -> list[Path]:
        return [self.path]


def _items(folder: Path, n: int = 3) -> list[Item]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        p = folder / f"img{i}.png"
        p.write_bytes(b"input %d" % i)
        items.append(Item(f"img{i}", p))
    return items


class Method:
    """A stand-in method that writes OUT/NAME.png and counts its calls."""

    def __init__(self, out: Path, tag: str = "A") -> None:
        self.out, self.tag, self.calls = out, tag, []

    def __call__(self, item: Item) -> ItemResult:
        self.calls.append(item.name)
        target = self.out / f"{item.name}.png"
        target.write_text(self.tag)
        return ItemResult(item.name, outputs=[str(target)])


def _plan(out: Path, method: str = "A", overwrite: bool = False) -> OutputPlan:
    return OutputPlan(folder=out, recipe={"method": method, "options": {"tile": 0}},
                      outputs=lambda it: [out / f"{it.name}.png"], overwrite=overwrite)


def _run(items, method, plan, **kw) -> int:
    return run_batch(items, method, lambda it: it.name, plan=plan, out=OutputOptions(folder=plan.folder, quiet=True),
                     **kw)


def test_same_method_skips_and_records_beside_the_outputs(tmp_path):
    items, out = _items(tmp_path / "in"), tmp_path / "out"
    first = Method(out)
    assert _run(items, first, _plan(out)) == 0 and len(first.calls) == 3
    record = json.loads((out / ".dpdeblur" / "img0.json").read_text())
    assert record["recipe"]["method"] == "A" and record["state"] == "done"
    again = Method(out)
    assert _run(items, again, _plan(out)) == 0
    assert again.calls == []  # done earlier the same way


def test_another_method_is_refused_before_any_computation_naming_the_difference(tmp_path, capsys):
    items, out = _items(tmp_path / "in"), tmp_path / "out"
    _run(items, Method(out), _plan(out))
    other = Method(out, "B")
    with pytest.raises(OutputError) as info:
        _run(items, other, _plan(out, method="B"))
    assert other.calls == []
    message = info.value.one_line()
    assert "method A -> B" in message and "--overwrite" in message and str(out) in message
    assert (out / "img0.png").read_text() == "A"  # nothing lost
    # --overwrite recomputes every item with the new method
    assert _run(items, other, _plan(out, method="B", overwrite=True)) == 0
    assert other.calls == ["img0", "img1", "img2"] and (out / "img1.png").read_text() == "B"


def test_new_items_run_and_a_changed_input_is_noticed(tmp_path):
    items, out = _items(tmp_path / "in", 2), tmp_path / "out"
    _run(items, Method(out), _plan(out))
    items = _items(tmp_path / "in", 3)  # one more image; the first two rewritten with the same bytes ...
    os.utime(items[0].path, ns=(1, 1))  # ... and one of them touched
    with pytest.raises(OutputError, match="its input changed"):
        _run(items, Method(out), _plan(out))


def test_outputs_of_unknown_origin_are_refused(tmp_path):
    items, out = _items(tmp_path / "in", 1), tmp_path / "out"
    out.mkdir()
    (out / "img0.png").write_text("someone else's")
    method = Method(out)
    with pytest.raises(OutputError, match="no record of how"):
        _run(items, method, _plan(out))
    assert method.calls == []


def test_an_interrupted_item_is_redone(tmp_path):
    items, out = _items(tmp_path / "in", 1), tmp_path / "out"

    def crash(item):
        (out / f"{item.name}.png").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(items, crash, _plan(out))
    method = Method(out)
    assert _run(items, method, _plan(out)) == 0
    assert method.calls == ["img0"] and (out / "img0.png").read_text() == "A"


def test_an_output_that_is_an_input_is_refused_first(tmp_path):
    folder = tmp_path / "photos"
    items = _items(folder, 2)
    method = Method(folder)
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        _run(items, method, _plan(folder))
    assert method.calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_output_folder_is_one_line_before_computing(tmp_path):
    items, out = _items(tmp_path / "in", 1), tmp_path / "locked"
    out.mkdir()
    out.chmod(0o500)
    method = Method(out)
    try:
        with pytest.raises(OutputError, match="cannot write to the output folder"):
            _run(items, method, _plan(out))
    finally:
        out.chmod(0o700)
    assert method.calls == []


def test_an_output_folder_that_cannot_be_made_is_one_line_before_computing(tmp_path):
    items = _items(tmp_path / "in", 1)
    (tmp_path / "file").write_text("x")
    method = Method(tmp_path / "file" / "out")
    with pytest.raises(OutputError, match="cannot write to the output folder") as info:
        _run(items, method, _plan(tmp_path / "file" / "out"))
    assert method.calls == [] and "\n" not in info.value.one_line()


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    items = _items(tmp_path / "in", 1)
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        _run(items, Method(tmp_path / "out"), _plan(tmp_path / "out"))


def test_quiet_still_prints_the_final_line(tmp_path, capsys):
    items, out = _items(tmp_path / "in", 2), tmp_path / "out"
    capsys.readouterr()
    assert _run(items, Method(out), _plan(out)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("2 done, 0 skipped") and str(out) in err[0]


def test_output_folder_equal_to_an_input_folder_says_so(tmp_path):
    from dpcli.errors import InputError
    from dpcli.io.pairs import discover_inputs

    _items(tmp_path / "photos", 2)
    with pytest.raises(InputError, match="both the input and the output folder"):
        discover_inputs([tmp_path / "photos"], exclude=[tmp_path / "photos"])


def test_a_failed_item_leaves_no_partial_output(tmp_path):
    items, out = _items(tmp_path / "in", 2), tmp_path / "out"

    def half(item):
        (out / f"{item.name}.png").write_text("half")
        if item.name == "img1":
            raise RuntimeError("boom")
        return ItemResult(item.name, outputs=[str(out / f"{item.name}.png")])

    assert _run(items, half, _plan(out)) == 1
    assert (out / "img0.png").exists() and not (out / "img1.png").exists()
    assert not (out / ".dpdeblur" / "img1.json").exists()


def test_an_error_without_a_file_names_the_item(tmp_path, capsys):
    from dpcli.errors import DpError

    items, out = _items(tmp_path / "in", 2), tmp_path / "out"

    def too_small(item):
        raise DpError("the image is 7x5 px; this method needs at least 32 px per side")

    assert _run(items, too_small, _plan(out)) == 1
    err = capsys.readouterr().err
    assert "error: img0: the image is 7x5 px" in err and "error: img1: the image is 7x5 px" in err
