"""`dpdeblur run` (the one home of its tests) and `dpdeblur models` through the real console entry point
(tiny models)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dpcli.cli as cli
import dpcli.cli.cameras  # noqa: F401  (registers `cameras` where the CLI package does not yet)
from dpcli.io.images import read_image, write_image
from dpcli.models import create_model
from dpcli.models.loading import save_weights
from tests.methods.conftest import render_pair


def _main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dpdeblur", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        cli.main()
        sys.exit(0)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.fixture()
def inputs(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "scene_L.png", rng.random((3, 40, 56), dtype=np.float32), 16)
    write_image(folder / "scene_R.png", rng.random((3, 40, 56), dtype=np.float32), 16)
    write_image(folder / "photo.png", rng.random((3, 33, 47), dtype=np.float32), 8)
    return folder


@pytest.fixture()
def no_registered_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path / "no-weights"))


@pytest.mark.usefixtures("no_registered_weights")
class TestRun:
    def test_pair_with_weights_file(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        weights = save_weights(create_model("bambnet_deblur_test"), "bambnet_deblur_test", tmp_path / "b.safetensors")
        coc = save_weights(create_model("bambnet_coc_test"), "bambnet_coc_test", tmp_path / "c.safetensors")
        out = tmp_path / "out"
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png", "-o", out,
                             "--weights", weights, "--tile", "0", "--defocus-map", "--defocus-weights", coc, "-q")
        assert code == 0, err
        aif = read_image(out / "scene.png")
        assert aif.bit_depth == 16 and aif.data.shape == (3, 40, 56)
        radius = read_image(out / "scene_defocus.tiff")
        assert radius.bit_depth == 32 and radius.data.shape == (1, 40, 56)
        assert (out / "scene_defocus.png").is_file()
        # resume: a second run with the same recipe skips the finished pair
        code, stdout, _ = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                                "-o", out, "--weights", weights, "--tile", "0", "--defocus-map", "--defocus-weights",
                                coc, "--json")
        assert code == 0 and json.loads(stdout)["counts"]["skipped"] == 1

    def test_single_image_keeps_8_bits(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        weights = save_weights(create_model("defocusgan_generator_test"), "defocusgan_generator_test",
                               tmp_path / "g.safetensors")
        out = tmp_path / "out"
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "photo.png", "-o", out, "--weights", weights, "-q")
        assert code == 0, err
        image = read_image(out / "photo.png")
        assert image.bit_depth == 8 and image.data.shape == (3, 33, 47)
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                             "-o", tmp_path / "out2", "--single", "--weights", weights, "--bit-depth", "8", "-q")
        assert code == 0, err
        assert read_image(tmp_path / "out2" / "scene.png").bit_depth == 8

    def test_no_model_pairs_deblur_singles_say_so_once(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        """Mixed folder, nothing shipped for single images: the pair is deblurred by the default
        (zero-shot), each single image fails with one line, no suggestion loop."""
        code, stdout, err = _main(monkeypatch, capsys, "run", inputs, "-o", tmp_path / "out", "--json")
        assert code == 1
        items = {it["name"]: it for it in json.loads(stdout)["items"]}
        assert items["scene"]["status"] == "ok" and items["scene"]["details"]["method"] == "zeroshot"
        assert items["scene"]["details"]["orientation"].split(" (")[0] in ("as given", "swapped")
        assert items["photo"]["status"] == "failed"
        assert items["photo"]["message"].count("no method for single images") == 1
        assert "--method" not in items["photo"]["message"]
        assert (tmp_path / "out" / "scene.png").is_file() and not (tmp_path / "out" / "photo.png").exists()

    def test_plain_checkpoint_is_the_deblurring_net(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        """Keys alone fit BaMBNet's deblur and COC nets: `run` means the deblurring net, no --arch."""
        from safetensors.torch import save_file

        plain = tmp_path / "plain.safetensors"
        save_file(create_model("bambnet_deblur_test").state_dict(), str(plain))
        code, stdout, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                                  "-o", tmp_path / "out", "--method", "bambnet", "--weights", plain, "--json")
        assert code == 0, err
        assert json.loads(stdout)["items"][0]["details"]["method"] == "bambnet"

    def test_coc_checkpoint_given_to_run_is_reported(self, tmp_path, monkeypatch, capsys, reference_dir) -> None:
        """The authors' COC file has the deblurring net's keys; its output (radii) is not an image
        of the scene, which run detects and reports instead of writing it."""
        _, left, right = render_pair(3.0, colour=True, size=(64, 96))
        folder = tmp_path / "in"
        folder.mkdir()
        write_image(folder / "s_L.png", left, 16)
        write_image(folder / "s_R.png", right, 16)
        coc = reference_dir / "bambnet_coc" / "official_state_dict.safetensors"
        code, _, err = _main(monkeypatch, capsys, "run", folder, "-o", tmp_path / "out", "--method", "bambnet",
                             "--weights", coc)
        assert code == 2 and "does not resemble the input" in err and "--defocus-weights" in err
        assert not (tmp_path / "out" / "s.png").exists()

    def test_classical_needs_no_weights(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        out = tmp_path / "out"
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png", "-o", out,
                             "--method", "classical", "--defocus-map", "-q")
        assert code == 0, err
        assert read_image(out / "scene.png").data.shape == (3, 40, 56)
        assert (out / "scene_defocus.tiff").is_file()  # the map follows the method (classical)

    def test_single_image_network_on_pairs_asks_for_single(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        weights = save_weights(create_model("defocusgan_generator_test"), "defocusgan_generator_test",
                               tmp_path / "g.safetensors")
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                             "-o", tmp_path / "out", "--method", "defocusgan", "--weights", weights)
        assert code == 2 and "--single" in err

    def test_family_without_weights_says_where_weights_come_from(self, tmp_path, inputs, monkeypatch,
                                                                 capsys) -> None:
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "photo.png", "-o", tmp_path / "out",
                             "--method", "defocusgan")
        assert code == 2 and "no trained weights for defocusgan" in err and "--weights" in err

    def test_unknown_camera_is_one_line(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        code, _, err = _main(monkeypatch, capsys, "run", inputs, "-o", tmp_path / "out", "--camera", "nosuch")
        assert code == 2 and "--camera nosuch: no such camera profile" in err and "pixel4" in err and "Traceback" not in err


def test_both_file_orders_give_the_same_image(tmp_path, monkeypatch, capsys) -> None:
    """A linear grey DP pair (phone domain) in either file order: the default method, the order
    detected from the data, identical output; --swap-lr overrides the detection."""
    _, left, right = render_pair(4.0, size=(64, 96))
    for order, (a, b) in {"given": (left, right), "reversed": (right, left)}.items():
        folder = tmp_path / order
        folder.mkdir()
        write_image(folder / "s_left.png", np.clip(a, 0, 1), 16)
        write_image(folder / "s_right.png", np.clip(b, 0, 1), 16)
    outs = {}
    for order, expect in (("given", "as given"), ("reversed", "swapped")):
        code, stdout, err = _main(monkeypatch, capsys, "run", tmp_path / order, "-o", tmp_path / f"out_{order}",
                                  "--linear", "--json")
        assert code == 0, err
        details = json.loads(stdout)["items"][0]["details"]
        assert details["method"] == "zeroshot" and details["orientation"].startswith(expect)
        outs[order] = read_image(tmp_path / f"out_{order}" / "s.png").data
    assert np.abs(outs["given"] - outs["reversed"]).max() < 1e-4
    code, stdout, _ = _main(monkeypatch, capsys, "run", tmp_path / "given", "-o", tmp_path / "out_forced",
                            "--linear", "--swap-lr", "--json")
    assert json.loads(stdout)["items"][0]["details"]["orientation"] == "swapped (user)"


def test_pair_option_runs_two_files_of_any_name_as_one_pair(tmp_path, monkeypatch, capsys) -> None:
    """--pair LEFT RIGHT (repeatable): one output per pair, named after LEFT without its view suffix, the
    same pixels as the pair under NAME_L/NAME_R names."""
    _, left, right = render_pair(3.0, colour=True, size=(40, 56))
    write_image(tmp_path / "a" / "IMG_7_left.png", left, 16)
    write_image(tmp_path / "b" / "second view.png", right, 16)
    write_image(tmp_path / "named" / "IMG_7_L.png", left, 16)
    write_image(tmp_path / "named" / "IMG_7_R.png", right, 16)
    write_image(tmp_path / "c" / "x.png", right, 16)
    code, stdout, err = _main(monkeypatch, capsys, "run", "--pair", tmp_path / "a" / "IMG_7_left.png",
                              tmp_path / "b" / "second view.png", "--pair", tmp_path / "c" / "x.png",
                              tmp_path / "a" / "IMG_7_left.png", "-o", tmp_path / "out", "--method", "classical",
                              "--json")
    assert code == 0, err
    items = json.loads(stdout)["items"]
    assert [i["name"] for i in items] == ["IMG_7", "x"] and sorted(p.name for p in (tmp_path / "out").glob("*.png")) \
        == ["IMG_7.png", "x.png"]
    code, _, err = _main(monkeypatch, capsys, "run", tmp_path / "named", "-o", tmp_path / "ref", "--method",
                         "classical", "-q")
    assert code == 0, err
    assert np.array_equal(read_image(tmp_path / "out" / "IMG_7.png").data,
                          read_image(tmp_path / "ref" / "IMG_7.png").data)
    code, _, err = _main(monkeypatch, capsys, "run", "--pair", tmp_path / "c" / "x.png", tmp_path / "nope.png",
                         "-o", tmp_path / "out2")
    assert code == 2 and err.strip() == f"error: {tmp_path / 'nope.png'}: no such file or folder"


def test_a_folder_run_without_recursive_says_what_subfolders_hold(tmp_path, monkeypatch, capsys) -> None:
    _, left, right = render_pair(3.0, colour=True, size=(40, 56))
    write_image(tmp_path / "tree" / "top_L.png", left, 16)
    write_image(tmp_path / "tree" / "top_R.png", right, 16)
    for name in ("a", "b"):
        write_image(tmp_path / "tree" / "sub" / f"{name}_L.png", left, 8)
        write_image(tmp_path / "tree" / "sub" / f"{name}_R.png", right, 8)
    code, _, err = _main(monkeypatch, capsys, "run", tmp_path / "tree", "-o", tmp_path / "out1",
                         "--method", "classical")
    assert code == 0, err
    assert "note: 2 images or pairs in subfolders (sub/) left out: -r (--recursive) takes them" in err
    code, _, err = _main(monkeypatch, capsys, "run", tmp_path / "tree", "-o", tmp_path / "out2", "--method",
                         "classical", "-r")
    assert code == 0 and "left out" not in err and "3 done" in err


def test_weights_name_is_the_method_of_that_name(tmp_path, monkeypatch, capsys) -> None:
    """`dpdeblur models` lists names "as --method and --weights take them": --weights NAME runs the
    shipped weights NAME, as --method NAME does."""
    from tests.methods.conftest import shipped_pair_network

    name = shipped_pair_network("dslr")
    _, left, right = render_pair(3.0, colour=True, size=(40, 56))
    write_image(tmp_path / "in" / "s_L.png", left, 16)
    write_image(tmp_path / "in" / "s_R.png", right, 16)
    outs = {}
    for flag in ("--weights", "--method"):
        code, stdout, err = _main(monkeypatch, capsys, "run", tmp_path / "in", "-o", tmp_path / flag, flag, name,
                                  "--json", "--tile", "0")
        assert code == 0, err
        assert json.loads(stdout)["items"][0]["details"]["method"] == name
        outs[flag] = read_image(tmp_path / flag / "s.png").data
    assert np.array_equal(outs["--weights"], outs["--method"])
    code, _, err = _main(monkeypatch, capsys, "run", tmp_path / "in", "-o", tmp_path / "o3", "--weights", name,
                         "--method", "zeroshot")
    assert code == 2 and f"--weights {name} are bambnet_deblur_small weights, not zeroshot" in err


def test_cameras_lists_shipped_profiles(monkeypatch, capsys) -> None:
    code, stdout, _ = _main(monkeypatch, capsys, "cameras", "--json")
    names = {p["name"] for p in json.loads(stdout)}
    assert code == 0 and {"pixel4", "canon-eos-5d-mark-iv", "generic-srgb"} <= names


def test_models_lists_architectures_and_no_weights(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
    code, stdout, _ = _main(monkeypatch, capsys, "models", "--json")
    data = json.loads(stdout)
    names = [a["name"] for a in data["architectures"]]
    assert code == 0 and "bambnet_deblur" in names and "defocusgan_generator" in names
    assert data["weights"] == []
    code, stdout, _ = _main(monkeypatch, capsys, "models", "bambnet*")
    assert code == 0 and "No trained weights registered" in stdout and "defocusgan_generator" not in stdout


# --- the batch behaviour of run (bad inputs, reruns, quiet) -----------------------------------------

def _pair(folder: Path, name: str = "scene", h: int = 64, w: int = 96, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sharp = rng.random((3, h, w)).astype(np.float32)
    write_image(folder / f"{name}_L.png", np.clip(sharp * 0.9 + 0.05, 0, 1), 8)
    write_image(folder / f"{name}_R.png", np.clip(np.roll(sharp, 1, axis=2) * 0.9 + 0.05, 0, 1), 8)


def test_output_folder_equal_to_the_input_folder_is_named_not_no_images(dpdeblur, tmp_path):
    _pair(tmp_path / "photos")
    res = dpdeblur("run", tmp_path / "photos", "-o", tmp_path / "photos", "--method", "classical")
    assert res.code == 2 and len(res.err_lines) == 1
    assert "both the input and the output folder" in res.err and "no images found" not in res.err


def test_rerun_skips_and_another_method_is_refused_before_computing(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    out = tmp_path / "out"
    first = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["counts"]["ok"] == 1
    made = (out / "scene.png").read_bytes()
    again = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "--json")
    assert again.code == 0 and json.loads(again.out)["counts"]["skipped"] == 1
    start = time.perf_counter()
    other = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "zeroshot")
    assert time.perf_counter() - start < 5  # refused up front, nothing computed
    assert other.code == 2 and len(other.err_lines) == 1, other.err
    assert "classical" in other.err and "zeroshot" in other.err and "--overwrite" in other.err
    assert (out / "scene.png").read_bytes() == made  # nothing lost
    wants_map = dpdeblur("run", tmp_path / "in", "-o", out, "--method", "classical", "--defocus-map")
    assert wants_map.code == 2 and "defocus map off -> on" in wants_map.err  # says why, before computing


def test_quiet_prints_the_final_line(dpdeblur, tmp_path):
    _pair(tmp_path / "in")
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out", "--method", "classical", "-q")
    assert res.code == 0 and len(res.err_lines) == 1 and res.err_lines[0].startswith("1 done")


def test_a_corrupt_file_is_reported_as_such_without_a_model(dpdeblur, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scene_L.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "in" / "scene_R.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out")
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    assert "scene_L.png" in res.err and "weights" not in res.err


@pytest.mark.parametrize("size", [(1, 1), (5, 7)])
def test_a_tiny_pair_passes_through_or_is_one_line(dpdeblur, tmp_path, size):
    _pair(tmp_path / "in", h=size[0], w=size[1])
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out")
    assert res.code in (0, 2), res.err
    assert "Traceback" not in res.err and "padded input size" not in res.err
    if res.code == 2:
        assert len(res.err_lines) == 1 and "scene" in res.err and "px" in res.err
    else:
        assert (tmp_path / "out" / "scene.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--tile", "7"], "--tile 7: must be 0"),
    (["--tile", "-1"], "--tile -1: must be 0"),
    (["--precision", "fp16"], "--precision fp16 needs a GPU"),
])
def test_bad_values_are_refused_the_same_way(dpdeblur, tmp_path, args, message):
    _pair(tmp_path / "in")
    for command in (["run", tmp_path / "in"], ["defocus-map", tmp_path / "in"]):
        res = dpdeblur(*command, "-o", tmp_path / "out", *args)
        assert res.code == 2 and len(res.err_lines) == 1 and message in res.err, (command, res.err)
