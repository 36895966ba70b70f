"""Restormer and LaKDNet: our modules compute the authors' functions, configurations are read
from checkpoint shapes, and the files run through the API and `dpdeblur run` with no flags.

Reference data (never in the repo): ../shared/reference/{restormer,lakdnet}_{dual_pixel,single}
(the authors' classes at a reduced configuration, every tensor perturbed; README there).
Criterion: relative L2 error < 1e-5 against ``official_output``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import dpcli
from dpcli.errors import ModelError
from dpcli.io.images import read_image, write_image
from dpcli.models.loading import load_model
from tests.cli.conftest import dpdeblur  # noqa: F401  (the CLI runner fixture)

FOLDERS = {  # folder: (family, task, released weights file format)
    "restormer_dual_pixel": ("restormer", "deblur_pair", "params"),
    "restormer_single": ("restormer", "deblur_single", "params"),
    "lakdnet_dual_pixel": ("lakdnet", "deblur_pair", "bare"),
    "lakdnet_single": ("lakdnet", "deblur_single", "bare"),
}


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def _as_released(folder: Path, fmt: str, out: Path) -> Path:
    """The reference state dict saved the way its authors release checkpoints (.pth)."""
    sd = load_file(str(folder / "official_state_dict.safetensors"))
    torch.save({"params": sd} if fmt == "params" else sd, out)
    return out


@pytest.fixture(params=sorted(FOLDERS))
def case(request, reference_dir, tmp_path):
    name = request.param
    family, task, fmt = FOLDERS[name]
    folder = reference_dir / name
    return dict(name=name, family=family, task=task, io=load_file(str(folder / "io.safetensors")),
                pth=_as_released(folder, fmt, tmp_path / f"{name}.pth"), folder=folder)


def test_module_reproduces_the_authors_output(case) -> None:
    loaded = load_model(None, task=case["task"], weights=case["pth"])  # no family, no arch: from the file
    assert loaded.info.family == case["family"] and loaded.official and loaded.colour_order == "RGB"
    with torch.inference_mode():
        out = loaded.module(case["io"]["official_input"])
    assert rel_l2(out, case["io"]["official_output"]) < 1e-5


def _api(case, **kw) -> torch.Tensor:
    io = case["io"]
    if case["task"] == "deblur_pair":
        return dpcli.deblur_pair(io["left"], io["right"], weights=case["pth"], device="cpu", **kw)
    return dpcli.deblur_image(io["combined"], weights=case["pth"], device="cpu", **kw)


def test_api_full_frame_and_one_tile_match_the_authors(case) -> None:
    """RGB views in, the authors' output clamped to [0, 1] out (LaKDNet dual: C built from L and R)."""
    want = case["io"]["official_output"].clamp(0, 1)
    assert rel_l2(_api(case, tile=0), want) < 1e-5
    assert rel_l2(_api(case, tile=256, tile_overlap=32), want) < 1e-5  # one tile through the tiler


def test_api_pads_by_reflection_like_the_authors_test(case) -> None:
    """A size that is no multiple of 8: reflection padding at the bottom/right, cropped back."""
    io = case["io"]
    h, w = 125, 153
    crop = {k: v[..., :h, :w] for k, v in io.items() if k != "official_output"}
    loaded = load_model(None, task=case["task"], weights=case["pth"])
    x = crop["official_input"]
    padded = F.pad(F.pad(x, (0, 0, 0, 128 - h), mode="reflect"), (0, 160 - w, 0, 0), mode="reflect")
    with torch.inference_mode():
        want = loaded.module(padded)[..., :h, :w].clamp(0, 1)
    got = _api(dict(case, io=crop), tile=0)
    assert got.shape[-2:] == (h, w)
    assert rel_l2(got, want) < 1e-5


def test_multi_tile_difference_is_measured_and_small(case) -> None:
    """Real multi-tile path on a 256x320 frame: LaKDNet's convolutions are local (the tiles differ
    only where a 9x9 kernel chain reaches past the overlap); Restormer's channel attention spans the
    frame, so tiles change its function: both stay far below visible (> 35 dB to the full frame)."""
    io = case["io"]
    big = {k: torch.cat([torch.cat([v, v.flip(-1)], -1), torch.cat([v.flip(-2), v.flip(-2, -1)], -1)], -2)
           for k, v in io.items() if k in ("left", "right", "combined")}
    full = _api(dict(case, io=big), tile=0)
    tiled = _api(dict(case, io=big), tile=192, tile_overlap=64)
    mse = float((tiled - full).square().mean())
    psnr = 10 * np.log10(1 / max(mse, 1e-20))
    assert 0 < mse and psnr > 35, psnr


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_released_configuration_loads_without_flags(reference_dir, tmp_path, name) -> None:
    """Random tensors of every key and shape of the authors' released file, saved in their format."""
    family, task, fmt = FOLDERS[name]
    folder = reference_dir / name
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for line in (folder / "keys_full_config.txt").read_text().splitlines():
        key, shape, _ = line.split("\t")
        sd[key] = torch.randn(tuple(int(s) for s in re.findall(r"\d+", shape)), generator=gen) * 0.02
    path = tmp_path / "released.pth"
    torch.save({"params": sd} if fmt == "params" else sd, path)
    loaded = load_model(None, task=task, weights=path)
    info = json.loads((folder / "info.json").read_text())
    official = info["constructor_official"]
    cfg = loaded.module.cfg
    assert loaded.info.family == family
    assert sum(p.numel() for p in loaded.module.parameters()) == info["params_official"]
    assert (cfg.width, list(cfg.depths), cfg.in_chans, cfg.dual_pixel) == (
        official["dim"], official["num_blocks"], official["inp_channels"], official["dual_pixel_task"])
    assert int(cfg.width * cfg.ffn_expansion) == int(official["dim"] * official.get("ffn_expansion_factor", 2.3))
    if family == "restormer":
        assert list(cfg.heads) == official["heads"] and cfg.refinement == official["num_refinement_blocks"]
        assert cfg.norm == official["LayerNorm_type"]
    else:
        assert list(cfg.kernel_sizes) == official["mix_kernel_size"]


def test_bias_free_layernorm_is_read_from_the_shapes(tmp_path) -> None:
    from dpcli.models import create_model

    net = create_model("restormer_dual_test", norm="BiasFree", bias=True)
    sd = net.state_dict()
    assert not any(k.endswith("norm1.body.bias") for k in sd)
    path = tmp_path / "bf.pth"
    torch.save({"params": sd}, path)
    loaded = load_model(None, task="deblur_pair", weights=path)
    assert loaded.module.cfg.norm == "BiasFree" and loaded.module.cfg.bias
    x = torch.rand(1, 6, 32, 40)
    with torch.inference_mode():
        assert torch.equal(loaded.module(x), net.eval()(x))


# --- through the command line ------------------------------------------------------------------------



def test_run_with_the_authors_file_matches_their_output(case, tmp_path, dpdeblur) -> None:
    """`dpdeblur run DIR --weights FILE.pth`: family from the file, views in our order, float
    TIFF in and out (no quantisation), the authors' output clamped."""
    io = case["io"]
    src = tmp_path / "in"
    src.mkdir()
    if case["task"] == "deblur_pair":
        write_image(src / "scene_L.tiff", io["left"][0].numpy(), 32)
        write_image(src / "scene_R.tiff", io["right"][0].numpy(), 32)
        extra = ["--no-swap-lr"]
    else:
        write_image(src / "scene.tiff", io["combined"][0].numpy(), 32)
        extra = []
    out = tmp_path / "out"
    r = dpdeblur("run", src, "-o", out, "--weights", case["pth"], "--srgb",
                 "--bit-depth", "32f", "--threads", "1", "--device", "cpu", "-q", *extra)
    assert r.code == 0, r.err
    got = torch.from_numpy(read_image(out / "scene.tiff").data)[None]
    assert rel_l2(got, io["official_output"].clamp(0, 1)) < 1e-5


def test_run_weights_for_pairs_on_a_single_image_says_so(reference_dir, tmp_path, dpdeblur) -> None:
    pth = _as_released(reference_dir / "lakdnet_dual_pixel", "bare", tmp_path / "dual.pth")
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "photo.png", np.random.default_rng(0).random((3, 40, 48), dtype=np.float32), 8)
    r = dpdeblur("run", src, "-o", tmp_path / "out", "--weights", pth, "-q")
    assert r.code != 0
    assert "dual-pixel pairs" in r.err and "Traceback" not in r.err


def test_models_lists_the_families_as_your_weights(monkeypatch, dpdeblur, tmp_path) -> None:
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path / "none"))
    r = dpdeblur("models", "--json")
    assert r.code == 0
    families = {f["name"]: f for f in json.loads(r.out)["families"]}
    assert families["restormer"]["weights"] == "yours" and "non-commercial" in families["restormer"]["licence"]
    assert families["lakdnet"]["weights"] == "yours" and families["lakdnet"]["licence"] == "AGPL-3.0"
    assert "github.com/swz30/Restormer" in families["restormer"]["weights_source"]
    r = dpdeblur("models")
    assert "your weights" in r.out and "AGPL-3.0" in r.out


def test_family_without_shipped_weights_says_where_they_come_from(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(ModelError, match="github.com/lingyanruan/LaKDNet.*AGPL-3.0"):
        load_model("lakdnet", task="deblur_pair")


def test_restormer_tiles_never_go_below_its_minimum() -> None:
    """The memory plan alone would cut a 1120x1680 frame into ~370 px tiles; Restormer's attention
    needs >= 512 px tiles to stay within 0.05 dB of the full frame (bench_published)."""
    from dpcli.api import Deblurrer
    from dpcli.models import create_model, model_info
    from dpcli.models.loading import LoadedModel

    for arch in ("restormer_dual", "lakdnet_s_dual"):
        session = Deblurrer(LoadedModel(create_model(arch).eval(), arch, model_info(arch)), device="cpu")
        plan = session.tile_for(1120, 1680)
        sides = plan if isinstance(plan, tuple) else (plan, plan)
        assert plan != 0  # the full frame does not fit the 2 GiB budget
        if arch == "restormer_dual":
            assert min(s or 1120 for s in sides) >= 512, plan
        else:
            assert min(s or 1120 for s in sides) < 512, plan  # LaKDNet keeps the memory plan


def test_bf16_stays_close_to_fp32(case) -> None:
    """CPU bf16 autocast (LayerNorm, attention softmax and the output conv stay in float32)."""
    fp32, bf16 = _api(case, tile=0), _api(case, tile=0, precision="bf16")
    mse = float((fp32 - bf16).square().mean())
    assert 0 < mse < 10 ** (-40 / 10)  # above 40 dB


def test_our_safetensors_round_trip_any_width(tmp_path) -> None:
    """save_weights stores the config: a non-default LaKDNet / Restormer reloads as it was."""
    from dpcli.models import create_model
    from dpcli.models.loading import save_weights

    for arch, kwargs, task in (("lakdnet_dual_test", {"width": 12, "kernel_sizes": (7, 7, 5, 5)}, "deblur_pair"),
                               ("restormer_single_test", {"width": 16, "norm": "BiasFree"}, "deblur_single")):
        net = create_model(arch, **kwargs).eval()
        path = save_weights(net, arch, tmp_path / f"{arch}.safetensors")
        loaded = load_model(None, task=task, weights=path)
        x = torch.rand(1, net.cfg.in_chans, 32, 40)
        with torch.inference_mode():
            assert loaded.arch == arch and torch.equal(loaded.module(x), net(x))


def test_run_grey_linear_raw_planes(reference_dir, tmp_path, dpdeblur) -> None:
    """Grey linear DP planes (Pixel-style raw): the views go in as sRGB grey replicated to RGB,
    the result comes back grey at the input's size and bit depth."""
    pth = _as_released(reference_dir / "restormer_dual_pixel", "params", tmp_path / "r.pth")
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    plane = rng.random((1, 45, 61), dtype=np.float32) * 0.5
    write_image(src / "raw_L.png", plane, 16)
    write_image(src / "raw_R.png", np.roll(plane, 1, axis=-1), 16)
    r = dpdeblur("run", src, "-o", tmp_path / "out", "--weights", pth, "--linear", "--threads", "1", "-q")
    assert r.code == 0, r.err
    out = read_image(tmp_path / "out" / "raw.png")
    assert out.data.shape == (1, 45, 61) and out.bit_depth == 16
