"""`dpdeblur run` and `dpdeblur models` through the real console entry point (tiny models)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import dpcli.cli as cli
from dpcli.io.images import read_image, write_image
from dpcli.models import create_model
from dpcli.models.loading import save_weights


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
                             "--weights", weights, "--tile", "32", "--tile-overlap", "16", "--defocus-map",
                             "--defocus-weights", coc, "-q")
        assert code == 0, err
        aif = read_image(out / "scene.png")
        assert aif.bit_depth == 16 and aif.data.shape == (3, 40, 56)
        radius = read_image(out / "scene_defocus.tiff")
        assert radius.bit_depth == 32 and radius.data.shape == (1, 40, 56)
        assert np.abs(radius.data).max() <= 24
        assert (out / "scene_defocus.png").is_file()
        # resume: a second run skips the finished pair
        code, stdout, _ = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                                "-o", out, "--weights", weights, "--json")
        assert code == 0 and json.loads(stdout)["counts"]["skipped"] == 1

    def test_single_image_keeps_8_bits(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        weights = save_weights(create_model("defocusgan_generator_test"), "defocusgan_generator_test",
                               tmp_path / "g.safetensors")
        out = tmp_path / "out"
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "photo.png", "-o", out, "--weights", weights, "-q")
        assert code == 0, err
        image = read_image(out / "photo.png")
        assert image.bit_depth == 8 and image.data.shape == (3, 33, 47)
        # --single: the pair's combined view through the generator, written at --bit-depth 8
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png", "-o", out,
                             "--single", "--weights", weights, "--bit-depth", "8", "-q")
        assert code == 0, err
        assert read_image(out / "scene.png").bit_depth == 8

    def test_without_weights_exits_2_and_says_where_weights_come_from(self, tmp_path, inputs, monkeypatch,
                                                                      capsys) -> None:
        code, _, err = _main(monkeypatch, capsys, "run", inputs, "-o", tmp_path / "out")
        assert code == 2
        assert "no trained weights" in err and "dpdeblur train" in err and "--weights" in err
        assert not (tmp_path / "out" / "scene.png").exists()

    def test_ambiguous_checkpoint_asks_for_arch(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        from safetensors.torch import save_file

        plain = tmp_path / "plain.safetensors"
        save_file(create_model("bambnet_deblur_test").state_dict(), str(plain))
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                             "-o", tmp_path / "out", "--weights", plain)
        assert code == 2 and "--arch bambnet_deblur_test" in err.replace("\n", "")
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                             "-o", tmp_path / "out", "--weights", plain, "--arch", "bambnet_deblur_test", "-q")
        assert code == 0, err


    def test_classical_needs_no_weights(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        out = tmp_path / "out"
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png", "-o", out,
                             "--model", "classical", "-q")
        assert code == 0, err
        assert read_image(out / "scene.png").data.shape == (3, 40, 56)

    def test_single_image_network_on_pairs_asks_for_single(self, tmp_path, inputs, monkeypatch, capsys) -> None:
        code, _, err = _main(monkeypatch, capsys, "run", inputs / "scene_L.png", inputs / "scene_R.png",
                             "-o", tmp_path / "out", "--model", "defocusgan")
        assert code == 2 and "--single" in err


def test_models_lists_architectures_and_no_weights(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
    code, stdout, _ = _main(monkeypatch, capsys, "models", "--json")
    data = json.loads(stdout)
    names = [a["name"] for a in data["architectures"]]
    assert code == 0 and "bambnet_deblur" in names and "defocusgan_generator" in names
    assert data["weights"] == []
    code, stdout, _ = _main(monkeypatch, capsys, "models", "bambnet*")
    assert code == 0 and "No trained weights registered" in stdout and "defocusgan_generator" not in stdout
