"""Synthetic DP scenes: in-focus L == R, disparity grows linearly with the radius, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpcli.optics import dp_kernels, render_layers, srgb_to_linear, translating_disk_kernels
from dpcli.synth import SceneConfig, make_test_scene, render_scene
from dpcli.synth.camera import add_noise, apply_vignetting, encode
from dpcli.synth.textures import pink_noise, random_texture, stripes, text_like

pytest.importorskip("skimage")


def _xcorr_shift(a: torch.Tensor, b: torch.Tensor, max_shift: int = 24) -> float:
    """Horizontal shift s (sub-pixel) with a(x) ~ b(x - s), from the cross-correlation peak."""
    a = a - a.mean()
    b = b - b.mean()
    w = a.shape[-1]
    scores = []
    for s in range(-max_shift, max_shift + 1):
        pa = a[..., max(s, 0) : w + min(s, 0)]
        pb = b[..., max(-s, 0) : w - max(s, 0)]
        scores.append(float((pa * pb).mean()))
    c = np.array(scores)
    i = int(c.argmax())
    return i - max_shift + 0.5 * (c[i - 1] - c[i + 1]) / (c[i - 1] - 2 * c[i] + c[i + 1])


def _uniform_patch(radius: float, kernels: str = "rdpd") -> tuple[torch.Tensor, torch.Tensor]:
    tex = torch.from_numpy(pink_noise(np.random.default_rng(0), 160, 160, 1.0))
    colors = tex[None, None]
    alphas = torch.ones(1, 1, 1, 160, 160)
    res = render_layers(colors, alphas, torch.tensor([[radius]]), kernel=kernels)
    crop = (..., slice(30, -30), slice(30, -30))
    return res.left[crop], res.right[crop]


def test_in_focus_regions_identical():
    found = 0
    for seed in range(6):
        s = make_test_scene(96, seed=seed, max_radius=6.0, focus_mode="front", output="linear")
        sharp_mask = (s.defocus == 0).float()
        # shrink by more than any kernel's reach: no blurred neighbour bleeds in
        inner = 1 - F.max_pool2d(1 - sharp_mask[None], 15, stride=1, padding=7)[0]
        if inner.sum() < 50:
            continue
        found += 1
        m = inner.bool().expand(3, -1, -1)
        assert (s.left[m] - s.right[m]).abs().max() < 1e-6
        assert (s.left[m] - s.sharp[m]).abs().max() < 1e-6
    assert found >= 2


@pytest.mark.parametrize("kernels,lo,hi", [("rdpd", 0.78, 0.88), ("disk", 0.53, 0.61)])
def test_disparity_sign_and_linear_growth(kernels, lo, hi):
    radii = [2.0, 4.0, 6.0, 8.0, 10.0]
    shifts = []
    for r in radii:
        left, right = _uniform_patch(r, kernels)
        shifts.append(_xcorr_shift(left, right))
        neg_l, neg_r = _uniform_patch(-r, kernels)
        assert _xcorr_shift(neg_l, neg_r) == pytest.approx(-shifts[-1], abs=1e-3)
    shifts = np.array(shifts)
    assert (shifts > 0).all()  # left view displaced toward +x for positive radius
    slope, intercept = np.polyfit(radii, shifts, 1)
    fit = slope * np.array(radii) + intercept
    assert np.abs(fit - shifts).max() < 0.25  # linear in |r|
    assert lo < slope < hi and abs(intercept) < 0.6
    # the measured disparity per radius of each kernel model (see docs/physics.md)
    assert all(lo - 0.06 < s / r < hi + 0.06 for s, r in zip(shifts, radii))


def test_fft_and_direct_paths_agree():
    cfg = SceneConfig(height=80, width=96, max_radius=9.0, noise=False, vignetting=False,
                      objects=(3, 5), stereo_prob=0.0)
    from dpcli.synth.scene import generate_layers, scene_rng

    layers = generate_layers(scene_rng(4, 0), cfg)
    args = (layers.colors[None], layers.alphas[None], layers.radius[None])
    with torch.no_grad():
        a = render_layers(*args, method="direct", exact_constant=True)
        b = render_layers(*args, method="fft", exact_constant=True)
    assert (a.left - b.left).abs().max() < 1e-5
    assert (a.right - b.right).abs().max() < 1e-5


def test_make_test_scene_deterministic_and_consistent():
    a = make_test_scene(64, seed=3)
    b = make_test_scene(64, seed=3)
    c = make_test_scene(64, seed=4)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a.left, c.left)
    assert a.left.shape == (3, 64, 64) and a.defocus.shape == (1, 64, 64)
    lin = [srgb_to_linear(t) for t in (a.left, a.right, a.combined)]
    assert (lin[2] - (lin[0] + lin[1]) / 2).abs().max() < 1e-5
    assert a.defocus.min() >= 0 and a.defocus.max() == pytest.approx(6.0, abs=1e-4)
    assert (a.left - a.right).abs().mean() > 1e-3  # blurred parts differ between views
    # blur: the combined view is farther from the sharp image than the sharp image from itself
    assert (a.combined - a.sharp).abs().mean() > 5e-3


@pytest.mark.parametrize("mode,sign", [("front", 1), ("back", -1)])
def test_focus_modes_sign(mode, sign):
    s = make_test_scene(64, seed=1, focus_mode=mode, max_radius=5.0)
    assert (s.defocus * sign >= -1e-6).all()
    assert 2.5 < float((s.defocus * sign).max()) <= 5.0 + 1e-5


def test_render_scene_cameras_and_meta():
    dslr = render_scene(2, SceneConfig(height=64, width=96, camera="dslr", objects=(2, 4)))
    phone = render_scene(2, SceneConfig(height=64, width=96, camera="phone", objects=(2, 4)))
    assert dslr.output == "srgb16" and phone.output == "linear16" and dslr.bit_depth == 16
    # radii scale with width: DSLR 18-36 px at 1680 -> about 1-2 px at 96; phone smaller still
    assert 18 * 96 / 1680 - 1e-3 <= dslr.meta["camera"]["max_radius"] <= 36 * 96 / 1680 + 1e-3
    assert phone.meta["camera"]["max_radius"] <= 10 * 96 / 2016 + 1e-3
    native = render_scene(2, SceneConfig(height=64, width=96, camera="dslr", scale_radii=False,
                                         objects=(2, 4)))
    assert native.meta["camera"]["max_radius"] >= 18
    assert 0 < float(dslr.defocus.abs().max()) <= dslr.meta["camera"]["max_radius"] * (1 + 1e-5)
    q = torch.round(dslr.left * 65535)
    assert torch.equal(q / 65535, dslr.left)  # quantised to 16 bits
    assert len(dslr.meta["layers"]) >= 3 and dslr.meta["seed"] == 2


def test_textures_in_range():
    rng = np.random.default_rng(5)
    for fn in (pink_noise, stripes, text_like):
        t = fn(rng, 40, 50)
        assert t.shape == (3, 40, 50) and t.dtype == np.float32
        assert 0 <= t.min() and t.max() <= 1 and t.std() > 0.005
    tex, name = random_texture(rng, 30, 20, photo_prob=1.0)
    assert tex.shape == (3, 30, 20) and 0 <= tex.min() <= tex.max() <= 1


def test_noise_vignetting_encode():
    g = torch.Generator().manual_seed(0)
    x = torch.full((1, 200, 200), 0.4)
    y = add_noise(x, shot=0.01, read=0.02, generator=g)
    assert float(y.var()) == pytest.approx(0.01 * 0.4 + 0.02**2, rel=0.05)
    left, right = apply_vignetting(torch.ones(1, 10, 21), torch.ones(1, 10, 21), 0.2)
    assert left[0, 5, -1] > right[0, 5, -1] and left[0, 5, 0] < right[0, 5, 0]
    torch.testing.assert_close(left.flip(-1), right)
    v, depth = encode(torch.tensor([0.0, 0.18, 1.0, 1.5]), "srgb8")
    assert depth == 8 and v.tolist() == pytest.approx([0.0, 118 / 255, 1.0, 1.0])
    v, depth = encode(torch.tensor([0.5]), "linear16")
    assert depth == 16 and float(v) == pytest.approx(32768 / 65535)


def test_stereo_background_and_ground_plane_have_depth_maps():
    from dpcli.synth.scene import generate_layers, scene_rng

    cfg = SceneConfig(height=48, width=64, stereo_prob=1.0, ground_prob=1.0, objects=(1, 2),
                      focus_mode="back", max_radius=8.0)
    layers = generate_layers(scene_rng(0, 0), cfg)
    kinds = [m["kind"] for m in layers.meta["layers"]]
    assert kinds[0] == "stereo_background" and "ground" in kinds
    bg = layers.radius[0, 0]
    assert float(bg.max() - bg.min()) > 1.0  # real disparity -> varying radius
    g = layers.radius[kinds.index("ground"), 0]
    rows = g[layers.alphas[kinds.index("ground"), 0] > 0.99].numel()
    assert rows > 0 and float(g[-1].mean()) < float(g[g.shape[0] // 2 + 5].mean())  # nearer below
    assert float(layers.radius.max()) <= 1e-6  # back focus: everything in front
    s = render_scene(0, cfg)
    assert torch.isfinite(s.left).all() and s.meta["layers"][0]["texture"] == "motorcycle"


def test_measured_kernels_option(tmp_path):
    # a calibration-format pair whose file "left" acts as the right view (as on the Pixel 4)
    left, right = dp_kernels(torch.tensor([6.0] * 3), size=31)
    np.save(tmp_path / "blur_kernels_left.npy", right.numpy())
    np.save(tmp_path / "blur_kernels_right.npy", left.numpy())
    cfg = SceneConfig(height=48, width=48, max_radius=5.0, noise=False, objects=(1, 2),
                      kernels=str(tmp_path), output="linear16", stereo_prob=0.0)
    s = render_scene(3, cfg)
    assert s.meta["kernels"] == "measured" and s.meta["kernel_files_swapped"] is True
    assert s.meta["kernel_ref_radius"] == pytest.approx(6.0, abs=0.05)
    ref = render_scene(3, SceneConfig(**{**cfg.__dict__, "kernels": None}))
    # same scene, same radii: scaled measured RDPD kernels reproduce the RDPD rendering closely
    assert (s.linear["left"] - ref.linear["left"]).abs().mean() < 0.01


def test_soft_textures_are_soft_in_the_target_and_leave_other_scenes_alone():
    """soft_prob: textures resampled down and up (finest detail 1.5-3 px), in the all-in-focus target
    too; soft_prob 0 draws nothing, so the scenes of other settings are unchanged."""
    from dpcli.synth.textures import soften

    rng = np.random.default_rng(3)
    tex = stripes(rng, 64, 64) * 0.5 + pink_noise(rng, 64, 64) * 0.5
    soft = soften(np.random.default_rng(0), tex, (2.0, 2.0))
    fine = lambda t: float(np.abs(np.diff(t, axis=-1)).mean())  # noqa: E731
    assert soft.shape == tex.shape and abs(float(soft.mean() - tex.mean())) < 0.01
    assert fine(soft) < 0.7 * fine(tex)
    base = dict(height=64, width=96, camera="dslr", objects=(2, 4), photo_prob=1.0, allow_research=False)
    plain = render_scene(4, SceneConfig(**base))
    assert torch.equal(plain.sharp, render_scene(4, SceneConfig(**base, soft_prob=0.0)).sharp)
    softened = render_scene(4, SceneConfig(**base, soft_prob=1.0))
    assert all(layer["texture"].endswith("+soft") for layer in softened.meta["layers"] if "texture" in layer)
    assert fine(softened.sharp.numpy()) < 0.8 * fine(plain.sharp.numpy())
