"""Issue 26 item 6: the newcomer's smaller frictions, each seen once and each pinned here through the
real entry point (dpcli.cli.main): exit codes, one-line messages in user terms, output on the
right stream, tables that fit 80 columns."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dpcli.io.images import write_image

ROOT = Path(__file__).parents[2]


def _pair(folder: Path, name: str = "scene", h: int = 64, w: int = 96, seed: int = 0) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sharp = rng.random((3, h, w)).astype(np.float32)
    left, right = folder / f"{name}_L.png", folder / f"{name}_R.png"
    write_image(left, np.clip(sharp * 0.9 + 0.05, 0, 1), 8)
    write_image(right, np.clip(np.roll(sharp, 1, axis=2) * 0.9 + 0.05, 0, 1), 8)
    return left, right


# ------------------------------------------------------------------------------------ entry point
def test_dpdeblur_alone_prints_the_help_and_no_empty_error(dpdeblur):
    res = dpdeblur()
    assert res.code == 2  # nothing was done: a usage error's code (issue 37), not success
    assert "Usage" in res.out + res.err and "error" not in res.err


def test_an_option_another_command_has_is_named_not_a_far_suggestion(dpdeblur, tmp_path):
    left, right = _pair(tmp_path)
    res = dpdeblur("zeroshot", left, right, "-o", tmp_path / "out", "--tile", 3)
    assert res.code == 2 and len(res.err_lines) == 1
    assert "--quiet" not in res.err and "--tile" in res.err and "run" in res.err and "defocus-map" in res.err
    close = dpdeblur("run", left, "-o", tmp_path / "out", "--defocusmap")
    assert close.code == 2 and "--defocus-map" in close.err


def test_ctrl_c_on_run_exits_130_with_one_line_and_leaves_no_empty_folder(tmp_path):
    _pair(tmp_path / "in", h=1536, w=2048)
    _pair(tmp_path / "in", name="other", h=1536, w=2048, seed=1)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dpcli", "run", str(tmp_path / "in"), "-o", str(out),
                             "--method", "classical", "--threads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    record = out / ".dpdeblur" / "other.json"
    import time

    deadline = time.monotonic() + 120
    while not record.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert not out.exists()  # the item stopped half way left nothing, so nothing is left at all


# ------------------------------------------------------------------------------------ output folder
def test_a_failed_run_leaves_no_empty_output_folder(dpdeblur, tmp_path):
    left, right = _pair(tmp_path, h=1, w=1)
    out = tmp_path / "new" / "out"
    res = dpdeblur("run", left, right, "-o", out, "--method", "classical")
    assert res.code == 2
    assert not (tmp_path / "new").exists()


def test_made_another_way_speaks_of_methods_not_recipe_keys(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    out = tmp_path / "out"
    assert dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "-q").code == 0
    from dpcli.pipeline import MethodChooser

    recipe = json.loads((out / ".dpdeblur" / "scene.json").read_text())["recipe"]
    recipe.update(MethodChooser("auto", None, None, {}).recipe())  # as if made by the default
    record = json.loads((out / ".dpdeblur" / "scene.json").read_text())
    record["recipe"] = recipe
    (out / ".dpdeblur" / "scene.json").write_text(json.dumps(record))
    res = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical")
    assert res.code == 2 and len(res.err_lines) == 1
    assert "method auto -> classical" in res.err
    assert "defaults." not in res.err and "/pair" not in res.err and "None" not in res.err


@pytest.mark.slow
def test_readme_zeroshot_example_after_the_quick_start_is_not_refused(dpdeblur, tmp_path, monkeypatch):
    """The README's commands, in order, from the repository root (the quick start with the fast
    classical method: what is refused depends on the command, not the method)."""
    readme = (ROOT / "README.md").read_text()
    quick = re.search(r"dpdeblur run examples/pairs -o (\S+)", readme).group(1)
    zs = re.search(r"dpdeblur zeroshot (examples/\S+) (examples/\S+) -o (\S+)(.*)", readme)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    assert dpdeblur("run", "examples/pairs", "-o", quick, "--method", "classical", "-q", "--threads", 1).code == 0
    res = dpdeblur("zeroshot", zs.group(1), zs.group(2), "-o", zs.group(3), *zs.group(4).split(), "-q",
                   "--threads", 1)
    assert res.code == 0, res.err


# ------------------------------------------------------------------------------------ flags
@pytest.mark.parametrize("command, old, new", [
    ("run", "--model", "--method"), ("defocus-map", "--model", "--arch"),
    ("zeroshot", "--max-radius", "--last-layer-radius"), ("synth", "--max-radius", "--max-scene-radius"),
    ("synth", "--set", "--synth-set"), ("train", "--set", "--stage-set")])
def test_clashing_flags_are_renamed_and_the_old_spelling_is_hidden(dpdeblur, command, old, new):
    out = dpdeblur(command, "--help", columns=200).out
    flags = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", out))
    assert new in flags and old not in flags


def test_one_flag_one_meaning_across_commands(dpdeblur):
    """--model, --max-radius and --set each mean one thing wherever they are shown."""
    shown = {}
    for command in ("run", "zeroshot", "defocus-map", "synth", "train"):
        out = dpdeblur(command, "--help", columns=200).out
        for flag in ("--model", "--max-radius", "--set"):
            if re.search(rf"(?<![\w-]){flag}(?![\w-])", out):
                shown.setdefault(flag, []).append(command)
    assert all(len(commands) <= 1 for commands in shown.values()), shown


def test_old_spelling_still_works_with_a_note(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out", "--model", "classical", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["items"][0]["details"]["method"] == "classical"
    assert "--model is now --method" in res.err
    both = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "o2", "--model", "classical", "--method", "zeroshot")
    assert both.code == 2 and len(both.err_lines) == 1


def test_synth_camera_has_one_default(dpdeblur):
    defaults = {c: re.search(r"--synth-camera.*?\[default: (\w+)\]", " ".join(dpdeblur(c, "--help", columns=300)
                                                                               .out.split())).group(1)
                for c in ("synth", "train")}
    assert defaults["synth"] == defaults["train"], defaults


# ------------------------------------------------------------------------------------ help and tables
JARGON = ["<bool>", "SceneConfig field", "Algorithm 1's split", "dense G_F", "exact Fourier LS", "unpickler",
          "arch.tag"]
COMMANDS = ["run", "zeroshot", "defocus-map", "eval", "synth", "train", "models", "cameras", "convert-lpips"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_free_of_internal_words_and_its_examples_fit_80_columns(dpdeblur, command):
    res = dpdeblur(command, "--help", columns=80)
    text = " ".join(res.out.split())
    assert not [w for w in JARGON if w in text]
    import typer

    from dpcli.cli import app

    cmd = typer.main.get_command(app).commands[command]
    code = [line for line in (cmd.epilog or "").splitlines()] + \
           [line for line in (cmd.help or "").splitlines() if line.startswith(" ")]
    long = [line for line in code if len(line.rstrip()) > 77]  # rich indents the epilog by one column
    assert not long, long


def test_summary_lr_column_fits_80_columns(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out", "--method", "classical", columns=80)
    assert res.code == 0
    row = next(line for line in res.err.splitlines() if line.startswith("scene "))
    assert re.search(r"classical\s+(as given|swapped)\s", row), res.err
    table = [line for line in res.err.splitlines() if "done," not in line]  # the final line names the folder
    assert max(len(line) for line in table) <= 80


def test_models_is_short_and_lists_the_same_weights_once(dpdeblur):
    from dpcli.cli.models import _same_weights
    from dpcli.models.registry import list_pretrained

    res = dpdeblur("models", columns=80)
    assert res.code == 0
    lines = res.out.splitlines()
    assert len(lines) < 66  # about a screenful at 80 columns
    titles = {"architectures", "weights"}
    assert not [line for line in lines if re.fullmatch(r"\s{20,}\S+\s*", line) and line.strip() not in titles]
    same = _same_weights(list_pretrained())
    weights_part = res.out[res.out.index("weights"):]
    for name, others in same.items():
        assert weights_part.count(name) == 1 or all(o in weights_part for o in others)
    if same:
        assert "same weights" in res.out


def test_cameras_table_is_on_stdout_and_an_unknown_name_blames_no_flag(dpdeblur):
    res = dpdeblur("cameras")
    assert res.code == 0 and "pixel4" in res.out and "pixel4" not in res.err
    bad = dpdeblur("cameras", "nikon")
    assert bad.code == 2 and len(bad.err_lines) == 1
    assert "nikon" in bad.err and "--camera" not in bad.err


def test_run_with_an_unknown_camera_names_the_flag(dpdeblur, tmp_path):
    left, right = _pair(tmp_path)
    res = dpdeblur("run", left, right, "-o", tmp_path / "out", "--camera", "nikon")
    assert res.code == 2 and "--camera nikon" in res.err


# ------------------------------------------------------------------------------------ inputs
def test_a_tiny_colour_pair_names_the_chosen_methods_limit(dpdeblur, tmp_path):
    left, right = _pair(tmp_path, h=1, w=1)
    res = dpdeblur("run", left, right, "-o", tmp_path / "out", "--json")
    assert res.code == 2
    message = json.loads(res.out)["items"][0]["message"]
    assert "zero-shot" not in message and "1x1" in message
    from dpcli.methods import default_method

    assert default_method("dslr", True).name in message


def test_zeroshot_refuses_the_same_file_as_both_views(dpdeblur, tmp_path):
    left, _ = _pair(tmp_path)
    res = dpdeblur("zeroshot", left, left, "-o", tmp_path / "out")
    assert res.code == 2 and len(res.err_lines) == 1 and "both LEFT and RIGHT" in res.err
    assert not (tmp_path / "out").exists()


def test_synth_encoding_is_not_the_photo_format(dpdeblur, tmp_path):
    """`--format` is the file format (png | jpeg | tiff) of the commands that write photos; synth's
    encoding is `--encoding`, its old spelling a hidden alias with a note."""
    res = dpdeblur("synth", "-o", tmp_path / "a", "--count", "1", "--size", "64", "--encoding", "srgb8", "-q")
    assert res.code == 0, res.err
    old = dpdeblur("synth", "-o", tmp_path / "b", "--count", "1", "--size", "64", "--format", "srgb8", "-q")
    assert old.code == 0 and "--format is now --encoding" in old.err
    bad = dpdeblur("synth", "-o", tmp_path / "c", "--count", "1", "--size", "64", "--encoding", "jpeg")
    assert bad.code != 0 and "--encoding jpeg" in bad.err
