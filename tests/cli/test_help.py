"""Issue 17 items 2 and 4: every command's --help shows the shared options with the same names,
no Python type names, and an example; `models` and `eval` tables never cut the names one types."""
from __future__ import annotations

import re

import numpy as np
import pytest

COMMANDS = ["run", "zeroshot", "defocus-map", "eval", "synth", "train", "models", "cameras", "convert-lpips"]
INPUT = ["--black-level", "--white-level", "--white-sheet", "--srgb", "--linear", "--swap-lr", "--camera"]
OUTPUT = ["--output", "-o", "--bit-depth", "--overwrite", "--json", "--quiet", "-q", "--verbose", "-v"]
DEVICE = ["--device", "--precision", "--threads", "--tile"]
# which bundles each command takes (eval: no output folder or bit depth; synth/train: no bit depth)
SHARED = {
    "run": INPUT + OUTPUT + DEVICE,
    "zeroshot": INPUT + OUTPUT + ["--device", "--precision", "--threads"],
    "defocus-map": INPUT + OUTPUT + DEVICE,
    "eval": ["--overwrite", "--json", "--quiet", "-q", "--verbose", "-v"],
    "synth": ["--output", "-o", "--overwrite", "--json", "--quiet", "-q", "--verbose", "-v"],
    "train": ["--output", "-o", "--overwrite", "--json", "--quiet", "-q", "--verbose", "-v", "--srgb", "--linear",
              "--device", "--precision", "--threads"],
}
# flags that meant something else before issue 17 and must not come back
RETIRED = ["--white-sheet-left", "--white-sheet-right", "--raw-output", "--out ", "--linear-data", "--json-path"]
INTERNAL = re.compile(r"<(bool|str|int|float|path|Path|list\[[^>]*\]|[A-Za-z]+,[A-Za-z,]+)>")


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_internal_type_names_and_an_example(dpdeblur, command, columns):
    res = dpdeblur(command, "--help", columns=columns)
    assert res.code == 0, res.err
    assert not INTERNAL.search(res.out), INTERNAL.search(res.out).group(0)
    assert "Examples" in res.out
    assert f"dpdeblur {command}" in res.out


def test_the_root_help_names_no_types(dpdeblur):
    root = dpdeblur("--help")
    assert root.code == 0 and "--version" in root.out and not INTERNAL.search(root.out)


@pytest.mark.parametrize("command", ["zeroshot", "defocus-map", "synth", "train"])
def test_no_command_shows_another_commands_example(dpdeblur, command):
    """Shared options' help reads the same in every command: no `dpdeblur run` example outside run."""
    assert "dpdeblur run" not in dpdeblur(command, "--help", columns=200).out


@pytest.mark.parametrize("command", sorted(SHARED))
def test_shared_options_have_the_same_names_everywhere(dpdeblur, command):
    out = dpdeblur(command, "--help", columns=200).out
    flags = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", out))
    missing = [f for f in SHARED[command] if f not in flags]
    assert not missing, f"{command} lacks {missing}"
    assert not [f for f in RETIRED if f.strip() in flags], f"{command} still has a retired flag"


def test_synth_output_encoding_is_format_and_camera_model_is_synth_camera(dpdeblur):
    out = dpdeblur("synth", "--help", columns=200).out
    assert "--encoding" in out and "--synth-camera" in out and "--camera " not in out


def test_models_never_cuts_a_name(dpdeblur):
    from dpcli.methods import list_methods
    from dpcli.models.registry import list_models, list_pretrained

    # the tiny unit-test architectures are listed by name only (dpdeblur models '*_test')
    names = [n for n in list_models("*") if not n.endswith("_test")] + [c.name for c in list_pretrained()] + [
        m.name for m in list_methods()]
    for columns in (80, 120):
        res = dpdeblur("models", columns=columns)
        assert res.code == 0
        assert "…" not in res.out
        for name in names:
            assert re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", res.out), (columns, name)
        assert max(len(line) for line in res.out.splitlines() if not line.startswith("    ")) <= columns


def test_eval_never_cuts_an_image_name(dpdeblur, tmp_path):
    from dpcli.io.images import write_image

    name = "a_very_long_image_name_that_no_table_may_cut_scene_0001_of_the_test_set"
    for folder in ("p", "g"):
        (tmp_path / folder).mkdir()
    rng = np.random.default_rng(0)
    for stem in (name, "b"):
        gt = rng.random((3, 24, 24)).astype(np.float32)
        write_image(tmp_path / "g" / f"{stem}.png", gt, 16)
        write_image(tmp_path / "p" / f"{stem}.png", np.clip(gt + 0.02, 0, 1), 16)
    for columns in (80, 120):
        res = dpdeblur("eval", "--pred", tmp_path / "p", "--gt", tmp_path / "g", "--lpips", "none", columns=columns)
        assert res.code == 0, res.err
        assert name in res.out and "…" not in res.out
        assert "PSNR (dB)" in res.out.replace("\n", " ") or "PSNR" in res.out


def test_eval_combined_scores_the_blurry_input(dpdeblur, tmp_path):
    """`eval --combined` scores the DP pairs' combined view: the baseline, with a command."""
    import json

    from dpcli.io.images import write_image

    rng = np.random.default_rng(3)
    gt = rng.random((3, 16, 20)).astype(np.float32)
    (tmp_path / "pairs").mkdir()
    (tmp_path / "gt").mkdir()
    write_image(tmp_path / "gt" / "s.png", gt, 16)
    write_image(tmp_path / "pairs" / "s_L.png", gt, 16)  # both views = GT: the combined view is the GT
    write_image(tmp_path / "pairs" / "s_R.png", gt, 16)
    res = dpdeblur("eval", "--pred", tmp_path / "pairs", "--combined", "--gt", tmp_path / "gt", "--lpips", "none",
                   "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["mean"]["psnr"] > 60


def test_help_paragraphs_wrap_cleanly_at_80_columns():
    """Help renders a docstring's line breaks as they are: a body line longer than the 80-column
    help leaves a ragged one-word line after it (issue 26), so body lines stay within 78."""
    import inspect

    from dpcli.cli import app

    for command in app.registered_commands:
        doc = inspect.cleandoc(command.callback.__doc__ or "")
        long = [line for line in doc.splitlines()[1:] if len(line) > 78]
        assert not long, (command.name or command.callback.__name__, long)


def test_top_level_help_imports_no_torch():
    """`dpdeblur --help` answers without importing torch or numpy (start-up: issue 36)."""
    import subprocess
    import sys

    code = ("import sys\nfrom dpcli.cli import main\nsys.argv = ['dpdeblur', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False False"
