"""Photo folders, the sharp-crop filter, full-frame pseudo-depth scenes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpcli.errors import InputError
from dpcli.io.images import write_image
from dpcli.synth.photos import blurred_fraction, list_photos, sharp_photo_crop

pytest.importorskip("skimage")


def _sharp_photo(seed: int = 0, size: int = 160) -> np.ndarray:
    """A sharp natural-looking image: scikit-image's astronaut crop (sRGB, (3, H, W) in [0, 1])."""
    import skimage.data

    img = skimage.data.astronaut()[40:40 + size, 150:150 + size].astype(np.float32) / 255
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(c, sigma) for c in img]).astype(np.float32)


@pytest.fixture
def photo_folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    write_image(root / "a.png", _sharp_photo(), 8)
    write_image(root / "sub" / "b.jpg", _sharp_photo(), 8)
    (root / "notes.txt").write_text("not a photo")
    return root


def test_folder_is_read_recursively_and_errors_name_the_folder(photo_folder, tmp_path):
    files = list_photos((str(photo_folder),))
    assert sorted(p.name for p in files) == ["a.png", "b.jpg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no photos"):
        list_photos((str(empty),))
    with pytest.raises(InputError, match="not found"):
        list_photos((str(tmp_path / "missing"),))


def test_blurred_fraction_rejects_blur_keeps_sharp():
    sharp = torch.from_numpy(_sharp_photo())
    blurred = torch.from_numpy(_gaussian(_sharp_photo(), 2.0))
    assert blurred_fraction(sharp) < 0.2
    assert blurred_fraction(blurred) > 0.8
    flat = torch.full((3, 64, 64), 0.4)
    assert blurred_fraction(flat) == 0.0  # no texture: nothing to call blurred


def test_sharp_crop_prefers_the_sharp_photo(tmp_path):
    """With one sharp and one blurred photo, the filter returns crops of the sharp one (linear light)."""
    write_image(tmp_path / "sharp.png", _sharp_photo(), 8)
    write_image(tmp_path / "blurred.png", _gaussian(_sharp_photo(), 3.0), 8)
    files = list_photos((str(tmp_path),))
    rng = np.random.default_rng(0)
    names = [sharp_photo_crop(rng, files, 64, 64, zoom=(0.9, 1.0)).path.name for _ in range(12)]
    assert names.count("sharp.png") == 12
    crop = sharp_photo_crop(rng, files, 48, 80)
    assert crop.image.shape == (3, 48, 80) and crop.image.dtype == np.float32
    # linear light: the mean is below the sRGB-encoded mean of the same photo
    assert crop.image.mean() < _sharp_photo().mean()


def test_scenes_use_the_photo_folder(photo_folder):
    from dpcli.synth.scene import SceneConfig, render_scene

    cfg = SceneConfig(height=64, width=64, photos=(str(photo_folder),), photo_prob=1.0, folder_photo_prob=1.0,
                      stereo_prob=0.0, objects=(2, 3))
    sc = render_scene(0, cfg)
    textures = [layer["texture"] for layer in sc.meta["layers"] if "texture" in layer]
    assert textures and all(t.startswith("photo:") for t in textures)


def test_fullframe_scene_occludes_and_has_a_valid_defocus_map(photo_folder):
    """A full-frame scene: several depth layers tiling the frame over an opaque back layer, a
    defocus map within the camera's range that varies across segments, and DP blur."""
    from dpcli.synth.scene import SceneConfig, generate_layers, render_scene, scene_rng

    cfg = SceneConfig(height=96, width=96, photos=(str(photo_folder),), folder_photo_prob=1.0,
                      fullframe_prob=1.0, fullframe_objects=(0, 0), fullframe_layers=(4, 4), noise=False,
                      vignetting=False, max_radius=5.0, output="linear16", focus_mode="back")
    layers = generate_layers(scene_rng(3), cfg)
    assert layers.alphas.shape[0] >= 3 and all(m["kind"] == "segment_layer" for m in layers.meta["layers"])
    assert torch.all(layers.alphas[0] == 1)  # the back layer is opaque (hidden part filled)
    # the segment layers tile the frame: every pixel is covered by exactly one of them
    front = layers.alphas[1:].sum(0)
    assert float(front.max()) <= 1 + 1e-6
    sc = render_scene(3, cfg)
    d = sc.defocus
    assert d.shape == (1, 96, 96) and torch.isfinite(d).all()
    assert float(d.max()) <= 1e-5 and float(d.min()) >= -5.0 - 1e-5  # back focus: all r <= 0
    assert float(d.max() - d.min()) > 1.0  # depth varies
    lin = sc.linear
    assert (lin["combined"] - lin["sharp"]).abs().mean() > 1e-3  # blurred somewhere
    # blur reaches across occlusion edges: left/right differ where the defocus is large
    big = d[0].abs() > 2
    assert (lin["left"] - lin["right"]).abs().sum(0)[big].mean() > (lin["left"] - lin["right"]).abs().sum(0)[~big].mean()


def test_fullframe_is_deterministic(photo_folder):
    from dpcli.synth.scene import SceneConfig, render_scene

    cfg = SceneConfig(height=64, width=64, photos=(str(photo_folder),), fullframe_prob=1.0)
    a, b = render_scene(5, cfg, 2), render_scene(5, cfg, 2)
    assert torch.equal(a.left, b.left) and torch.equal(a.defocus, b.defocus)


def test_pseudo_depth_jumps_only_between_layers():
    """Depth is continuous inside a layer (a jump there would be blurred without occlusion) and
    the layers are ordered far to near."""
    from dpcli.synth.fullframe import pseudo_depth, segment_photo

    from dpcli.optics.color import srgb_to_linear

    img = srgb_to_linear(torch.from_numpy(_sharp_photo(size=128))).numpy()
    rng = np.random.default_rng(4)
    labels = segment_photo(rng, img)
    t, group = pseudo_depth(rng, labels, 5)
    assert t.min() == 0 and abs(t.max() - 1) < 1e-6 and 2 <= len(np.unique(group)) <= 5
    same = group[:, 1:] == group[:, :-1]
    step = np.abs(np.diff(t, axis=1))
    assert step[same].max() < 0.05  # smooth field: tiny steps inside a layer
    means = [t[group == k].mean() for k in np.unique(group)]
    assert means == sorted(means)
