"""The shared evaluation protocols reproduce the published no-deblur figures (real data)."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.metrics.protocols import (CANON_LABEL_BOX, canon_label_mask, list_pixel4_scenes,
                                     load_pixel4_scene, score_pixel4)

# ../shared/data/README.md: the combined image on the 4 dev scenes (PSNR / SSIM / MAE, full crop)
PUBLISHED_NO_DEBLUR = {"002": (27.82, 0.821, 0.0263), "006": (34.63, 0.931, 0.0075),
                       "009": (29.07, 0.819, 0.0161), "013": (33.54, 0.868, 0.0132)}


@pytest.mark.realdata
@pytest.mark.parametrize("scene_id", ["002", "013"])
def test_pixel4_combined_reproduces_published_scores(pixel4_dir, scene_id):
    scene = load_pixel4_scene(pixel4_dir, scene_id)
    m = score_pixel4(scene.combined, scene)  # full view in -> cropped inside
    p, s, a = PUBLISHED_NO_DEBLUR[scene_id]
    assert m["psnr"] == pytest.approx(p, abs=0.006)  # published figures are rounded
    assert m["ssim"] == pytest.approx(s, abs=0.0005)
    assert m["mae"] == pytest.approx(a, abs=0.00005)
    # the crop as input gives the same numbers
    assert score_pixel4(scene.crop_view(scene.combined), scene)["psnr"] == pytest.approx(m["psnr"])


@pytest.mark.realdata
def test_pixel4_scene_layout(pixel4_dir):
    assert list_pixel4_scenes(pixel4_dir) == ["002", "006", "009", "013"]
    scene = load_pixel4_scene(pixel4_dir, 6, swap_lr=False)
    assert scene.left.shape == (1, 1512, 2016) and scene.gt.shape == (1, 1008, 1344)
    assert scene.gt[0, 0].max() == 0 and scene.gt[0, :, -1].max() == 0  # 1-px zero border
    assert 0.2 < scene.valid.mean() <= 1.0
    swapped = load_pixel4_scene(pixel4_dir, 6)
    # swapping exchanges the views (the vignetting gain still goes to the file named right)
    np.testing.assert_array_equal(swapped.right, scene.left)


def test_canon_label_mask():
    mask = canon_label_mask(560, 840)
    r0, r1, c0, c1 = CANON_LABEL_BOX
    assert not mask[r0:r1, c0:c1].any() and mask.sum() == 560 * 840 - (r1 - r0) * (c1 - c0)
