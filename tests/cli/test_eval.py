"""`dpdeblur eval`, `dpdeblur defocus-map` and the defocus preview (CLI + library)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dpcli.cli import app
from dpcli.io.images import read_image, write_image
from dpcli.io.preview import defocus_preview, diverging_colormap

runner = CliRunner()


def _img(seed: int, c: int = 3, h: int = 40, w: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).random((c, h, w)).astype(np.float32)


@pytest.fixture
def folders(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for i, name in enumerate(["a", "b"]):
        g = _img(i)
        write_image(gt / f"{name}.png", g, 16)
        noise = np.where(np.random.default_rng(10 + i).random(g.shape) < 0.5, -1.0, 1.0) * 0.01
        write_image(pred / f"{name}_deblurred.png", np.clip(g + noise, 0, 1), 16)
    write_image(pred / "extra.png", _img(7), 16)  # no GT
    write_image(gt / "c.png", _img(8), 16)  # no prediction
    return pred, gt


def test_eval_table_json_csv(folders, tmp_path):
    pred, gt = folders
    out_json, out_csv = tmp_path / "s.json", tmp_path / "s.csv"
    result = runner.invoke(app, ["eval", "--pred", str(pred), "--gt", str(gt), "--json-file", str(out_json),
                                 "--csv", str(out_csv), "--lpips", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert [r["name"] for r in data["images"]] == ["a", "b"]
    assert set(data["mean"]) >= {"psnr", "ssim", "mae"}
    # re-read the written files to know the exact quantised error
    errs = []
    for name in ("a", "b"):
        p = read_image(pred / f"{name}_deblurred.png").data
        g = read_image(gt / f"{name}.png").data
        errs.append(10 * math.log10(1 / np.mean((p.astype(np.float64) - g) ** 2)))
    assert data["mean"]["psnr"] == pytest.approx(np.mean(errs), abs=1e-6)
    assert data["unmatched"] == {"pred": ["extra.png"], "gt": ["c"]}
    assert data["images"][0]["bits"] == "16/16"
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("name,psnr,ssim,mae") and lines[-1].startswith("mean,")
    assert "without GT" in result.output or "without GT" in (result.stderr if hasattr(result, "stderr") else "")


def test_eval_grey_vs_colour_and_bit_depths(tmp_path):
    pred, gt = tmp_path / "p", tmp_path / "g"
    pred.mkdir()
    gt.mkdir()
    g = _img(1)
    write_image(gt / "x.png", g, 16)
    write_image(pred / "x.png", g.mean(0, keepdims=True), 8)  # grey, 8-bit
    result = runner.invoke(app, ["eval", "--pred", str(pred), "--gt", str(gt), "--json-file", str(tmp_path / "j.json"),
                                 "--lpips", "none"])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "j.json").read_text())["images"][0]
    assert row["bits"] == "8/16"
    assert any("GT reduced to its channel mean" in n for n in row["notes"])
    assert row["psnr"] > 45  # only 8-bit quantisation error left


def test_eval_no_match_is_an_input_error(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    write_image(tmp_path / "p" / "x.png", _img(0), 8)
    write_image(tmp_path / "g" / "y.png", _img(0), 8)
    from dpcli.errors import InputError
    from dpcli.metrics.evaluate import evaluate_folders

    with pytest.raises(InputError, match="no prediction matches"):
        evaluate_folders(tmp_path / "p", tmp_path / "g")


def test_eval_defocus_maps(tmp_path):
    pred, gt, gmaps = tmp_path / "p", tmp_path / "g", tmp_path / "gm"
    for d in (pred, gt, gmaps):
        d.mkdir()
    g = _img(2)
    write_image(gt / "s.png", g, 16)
    write_image(pred / "s.png", g, 16)
    truth = np.linspace(-4, 4, 40 * 48, dtype=np.float32).reshape(40, 48)
    write_image(gmaps / "s_defocus.tiff", truth[None], 32)
    write_image(pred / "s_defocus.tiff", (truth + 0.5)[None], 32)
    from dpcli.metrics.evaluate import evaluate_folders

    rep = evaluate_folders(pred, gt, gt_maps_dir=gmaps)
    m = rep.rows[0].metrics
    assert m["map_spearman"] == pytest.approx(1.0)
    assert m["map_mae_px"] == pytest.approx(0.5, abs=1e-5)
    assert m["psnr"] == math.inf or m["psnr"] > 90


@pytest.mark.realdata
def test_eval_pixel4_protocol(pixel4_dir, tmp_path):
    from dpcli.metrics.protocols import load_pixel4_scene

    scene = load_pixel4_scene(pixel4_dir, "013")
    write_image(tmp_path / "013_aif.png", scene.combined, 16)  # full view: cropped by the protocol
    result = runner.invoke(app, ["eval", "--pred", str(tmp_path), "--gt", str(pixel4_dir),
                                 "--json-file", str(tmp_path / "j.json"), "--lpips", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "j.json").read_text())
    assert data["protocol"] == "pixel4"
    assert data["mean"]["psnr"] == pytest.approx(33.54, abs=0.01)  # README no-deblur figure (16-bit write)


def test_preview_colour_bar_and_sign_colours():
    r = np.zeros((120, 160), np.float32)
    r[:, :80] = -5.0
    r[:, 80:] = 5.0
    img = defocus_preview(r)
    assert img.shape[0] == 3 and img.shape[1] == 120 and img.shape[2] > 160
    left_px, right_px = img[:, 60, 10], img[:, 60, 150]
    assert left_px[2] > left_px[0] and right_px[0] > right_px[2]  # blue in front, red behind
    np.testing.assert_allclose(diverging_colormap(np.zeros(1))[:, 0], [0.97] * 3, atol=1e-6)  # white in focus
    bar = img[:, :, 160:]
    assert (bar < 0.05).all(axis=0).any()  # label text / ticks are drawn


def test_defocus_map_cli_classical(tmp_path):
    from dpcli.optics import blur, dp_kernels

    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(1, 1, 24, 28, generator=g), size=(96, 112), mode="bicubic")
    sharp = (0.2 + 0.6 * base.clamp(0, 1)).repeat(1, 3, 1, 1)
    kl, kr = dp_kernels(torch.tensor([3.0]))
    write_image(tmp_path / "s_L.tiff", blur(sharp, kl[None])[0].numpy(), 32)
    write_image(tmp_path / "s_R.tiff", blur(sharp, kr[None])[0].numpy(), 32)
    out = tmp_path / "out"
    result = runner.invoke(app, ["defocus-map", str(tmp_path / "s_L.tiff"), str(tmp_path / "s_R.tiff"), "-o", str(out),
                                 "--linear", "--npy", "--confidence", "--quiet"])
    assert result.exit_code == 0, result.output
    radius = read_image(out / "s_defocus.tiff").data[0]
    assert np.median(radius) == pytest.approx(3.0, abs=0.5)
    np.testing.assert_array_equal(np.load(out / "s_defocus.npy"), radius)
    assert (out / "s_defocus.png").is_file() and (out / "s_confidence.png").is_file()
    again = runner.invoke(app, ["defocus-map", str(tmp_path / "s_L.tiff"), str(tmp_path / "s_R.tiff"), "-o", str(out),
                                "--method", "bogus"])
    assert again.exit_code != 0


def test_eval_ignores_the_side_outputs_of_the_commands(folders, tmp_path):
    """zeroshot's NAME_kernels.png and defocus-map's NAME_confidence.png sit beside the predictions
    (issue 26): they are neither scored nor listed as predictions without a ground truth."""
    from dpcli.metrics.evaluate import evaluate_folders

    pred, gt = folders
    write_image(pred / "a_kernels.png", _img(11, c=1), 8)
    write_image(pred / "b_confidence.png", _img(12, c=1), 8)
    report = evaluate_folders(pred, gt)
    data = report.to_json()
    assert [r["name"] for r in data["images"]] == ["a", "b"]
    assert data["unmatched"]["pred"] == ["extra.png"]


def test_preview_labels_are_set_in_a_font_not_a_hand_made_bitmap():
    """Issue 26: the scale labels come from Pillow's scalable font: antialiased (grey edge pixels a
    1-bit glyph table never makes) and larger on a larger map."""
    import dpcli.io.preview as preview

    assert not hasattr(preview, "_FONT")

    def label_area(h: int) -> np.ndarray:
        img = defocus_preview(np.linspace(-4, 4, h * h).reshape(h, h).astype(np.float32))
        return img[:, :, h + 2 + 8 * max(1, h // 400) + 4:]  # right of the colour ramp: text only

    small, large = label_area(200), label_area(1200)
    grey = ((small > 0.15) & (small < 0.85)).all(axis=0)
    assert grey.sum() > 20
    inked = lambda a: int((a < 0.5).all(axis=0).any(axis=1).sum())  # noqa: E731 - rows holding text
    assert inked(large) > 2 * inked(small)
