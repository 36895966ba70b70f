"""Evaluation protocols shared by every part of dpdeblur (classical, zero-shot, training, eval).

Pixel 4 (Xin et al., ICCV 2021; docs/CONVENTIONS.md): preprocessed raw views (black level, 14-bit
scaling, white-sheet vignetting gain on the right file) via :mod:`dpcli.io.raw`; GT covers the
central crop rows 252:1260, cols 336:1680 with a 1-px zero border. Scores are PSNR/SSIM/MAE on
the FULL crop, the prediction compared as is against the GT including its zero border: this
reproduces the published no-deblur figures of ../shared/data/README.md exactly (002:
27.82/0.821/0.0263), whereas zeroing or excluding the border does not (002: 28.08 / 28.07 dB).

Canon DPDD GIF scenes: 8-bit palette frames whose GT and combined frames carry burnt-in text
labels in the top-left corner; measured on the 4 scenes the text spans rows 2-46 and columns
9-302 (wider than the nominal ~40x30), so :data:`CANON_LABEL_BOX` masks rows 0:52, cols 0:312.

DPDD layout: ``<root>/<split>_c/target/NAME.png`` ground truth (16-bit sRGB).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dpcli.errors import InputError
from dpcli.metrics.image import image_metrics
from dpcli.optics.kernels import PIXEL4_CROP, PIXEL4_GRID, PIXEL4_PATCH  # noqa: F401  (public here too)

CANON_LABEL_BOX = (0, 52, 0, 312)  # rows, cols masked in canon_res_* frames


@dataclass
class Pixel4Scene:
    """One Pixel 4 evaluation scene, preprocessed.

    Attributes:
        scene_id: "002" etc.
        left, right: float32 (1, 1512, 2016) views in OUR convention (see ``swapped``).
        gt: float32 (1, 1008, 1344) all-in-focus crop in view units (GT / 65535), 1-px zero border.
        gt_defocus: float32 (1008, 1344) GT defocus map, 8-bit normalised per scene (0 = invalid).
        valid: bool (1008, 1344), True where the GT defocus map is valid.
        crop: (row0, row1, col0, col1) of the GT crop in the views.
        swapped: True when the files named left/right were exchanged to match our convention.
    """

    scene_id: str
    left: np.ndarray
    right: np.ndarray
    gt: np.ndarray
    gt_defocus: np.ndarray
    valid: np.ndarray
    crop: tuple[int, int, int, int] = PIXEL4_CROP
    swapped: bool = True
    meta: dict = field(default_factory=dict)

    @property
    def combined(self) -> np.ndarray:
        """(left + right) / 2 over the full view (1, 1512, 2016)."""
        return (self.left + self.right) / 2

    def crop_view(self, image: np.ndarray) -> np.ndarray:
        """(..., 1512, 2016) -> (..., 1008, 1344) GT crop."""
        r0, r1, c0, c1 = self.crop
        return image[..., r0:r1, c0:c1]


def _read_png(path: Path) -> np.ndarray:
    from dpcli.io.images import _decode

    if not path.is_file():
        raise InputError("missing Pixel 4 file", path)
    return np.asarray(_decode(path))


def list_pixel4_scenes(pixel4_dir: str | Path) -> list[str]:
    """Scene ids that have left, right and GT files in ``pixel4_dir``."""
    root = Path(pixel4_dir)
    ids = sorted(m.group(1) for p in root.glob("*_left.png") if (m := re.match(r"(\d+)_left\.png$", p.name)))
    return [i for i in ids if (root / f"{i}_right.png").is_file()
            and (root / "gt_all_in_focus_im" / f"{i}_gt.png").is_file()]


def load_pixel4_scene(pixel4_dir: str | Path, scene_id: str | int, *, swap_lr: bool = True,
                      vignetting: bool = True) -> Pixel4Scene:
    """Load and preprocess one Pixel 4 scene.

    Args:
        pixel4_dir: folder with ``NNN_left.png``, ``NNN_right.png``, ``gt_all_in_focus_im/``,
            ``gt_defocus_map/`` and ``calibration/white_sheet_{left,right}.png``.
        scene_id: "002" or 2.
        swap_lr: the Pixel 4 files named ``left`` behave like OUR right view (the calibration
            kernels' centroids and the classical disparity both say so, and these scenes are
            front-focus = positive radii); the default True exchanges them after preprocessing so
            radii come out positive. Vignetting is applied to the file named right either way.
        vignetting: apply the white-sheet gain (docs/CONVENTIONS.md).

    Raises:
        InputError: a file is missing or of the wrong size.
    """
    from dpcli.io.raw import preprocess_planes

    root = Path(pixel4_dir)
    sid = f"{int(scene_id):03d}" if str(scene_id).isdigit() else str(scene_id)
    left_raw = _read_png(root / f"{sid}_left.png")
    right_raw = _read_png(root / f"{sid}_right.png")
    white = None
    if vignetting:
        white = (_read_png(root / "calibration" / "white_sheet_left.png"),
                 _read_png(root / "calibration" / "white_sheet_right.png"))
    left, right = preprocess_planes(left_raw, right_raw, white_sheet=white)
    left, right = np.asarray(left, np.float32)[None], np.asarray(right, np.float32)[None]
    if swap_lr:
        left, right = right, left
    gt_path = root / "gt_all_in_focus_im" / f"{sid}_gt.png"
    gt = _read_png(gt_path).astype(np.float32)[None] / 65535.0
    r0, r1, c0, c1 = PIXEL4_CROP
    if gt.shape[-2:] != (r1 - r0, c1 - c0) or left.shape[-2] < r1 or left.shape[-1] < c1:
        raise InputError(f"unexpected sizes: views {left.shape[-2:]}, GT {gt.shape[-2:]}", gt_path)
    dmap_path = root / "gt_defocus_map" / f"{sid}_gt.png"
    if dmap_path.is_file():
        dmap = _read_png(dmap_path).astype(np.float32)
        dmap = dmap[..., 0] if dmap.ndim == 3 else dmap
    else:
        dmap = np.zeros(gt.shape[-2:], np.float32)
    return Pixel4Scene(scene_id=sid, left=left, right=right, gt=gt, gt_defocus=dmap, valid=dmap > 0,
                       swapped=swap_lr)


def score_pixel4(pred: np.ndarray, scene: Pixel4Scene | np.ndarray) -> dict[str, float]:
    """PSNR / SSIM / MAE of a prediction against the Pixel 4 GT (published protocol).

    ``pred`` is either the crop (1, 1008, 1344) / (1008, 1344) or the full view (.., 1512, 2016),
    which is cropped here. Colour predictions (3, H, W) are reduced to their mean (the data are
    grey raw green replicated to RGB). Values are not clipped: a method owns its output range.
    """
    gt = scene.gt if isinstance(scene, Pixel4Scene) else np.asarray(scene, np.float32)
    p = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred, dtype=np.float32)
    if p.ndim == 2:
        p = p[None]
    if p.shape[-2:] != gt.shape[-2:]:
        r0, r1, c0, c1 = PIXEL4_CROP
        if p.shape[-2] < r1 or p.shape[-1] < c1:
            raise InputError(f"prediction of size {p.shape[-2:]} is neither the crop {gt.shape[-2:]} nor a full view")
        p = p[..., r0:r1, c0:c1]
    if p.shape[0] == 3:
        p = p.mean(axis=0, keepdims=True)
    return image_metrics(p, gt.reshape(1, *gt.shape[-2:]))


def pixel4_kernels(pixel4_dir: str | Path):
    """Measured, re-centred calibration kernels (left, right) each (48, 61, 61) in OUR view order
    (the file named left is our right view, see :func:`load_pixel4_scene`)."""
    from dpcli.optics import load_measured_kernels

    cal = Path(pixel4_dir) / "calibration"
    k_file_left, k_file_right = load_measured_kernels(cal / "blur_kernels_left.npy", cal / "blur_kernels_right.npy")
    return k_file_right, k_file_left


# ---------------------------------------------------------------- Canon DPDD GIF scenes
@dataclass
class CanonGifScene:
    """One reduced DPDD test scene (8-bit, 840x560): views a/b, combined capture, GT, mask."""

    scene_id: str
    view_a: np.ndarray
    view_b: np.ndarray
    combined: np.ndarray
    gt: np.ndarray
    mask: np.ndarray  # bool (H, W), False on the burnt-in label corner


def canon_label_mask(height: int, width: int) -> np.ndarray:
    """Bool (H, W) mask, False on the label corner of the GIF frames."""
    mask = np.ones((height, width), bool)
    r0, r1, c0, c1 = CANON_LABEL_BOX
    mask[r0:r1, c0:c1] = False
    return mask


def list_canon_scenes(canon_dir: str | Path) -> list[str]:
    root = Path(canon_dir)
    return sorted(m.group(1) for p in root.glob("canon_res_*_ground_truth.png")
                  if (m := re.match(r"canon_res_(\d+)_ground_truth\.png$", p.name)))


def load_canon_scene(canon_dir: str | Path, scene_id: str | int) -> CanonGifScene:
    """Load a ``canon-dpdd-gif`` scene as float32 (3, H, W) arrays in [0, 1] (sRGB, 8-bit)."""
    root = Path(canon_dir)
    sid = f"{int(scene_id):02d}" if str(scene_id).isdigit() else str(scene_id)

    def load(name: str) -> np.ndarray:
        a = _read_png(root / name)
        a = a[..., :3] if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)
        return np.ascontiguousarray(a.transpose(2, 0, 1).astype(np.float32) / 255.0)

    gt = load(f"canon_res_{sid}_ground_truth.png")
    return CanonGifScene(sid, load(f"canon_{sid}_view_a.png"), load(f"canon_{sid}_view_b.png"),
                         load(f"canon_res_{sid}_input_combined.png"), gt, canon_label_mask(*gt.shape[-2:]))


def score_canon(pred: np.ndarray, scene: CanonGifScene) -> dict[str, float]:
    """PSNR / SSIM / MAE against the GIF GT with the label corner masked (8-bit data: smoke-test
    figures, not comparable with 16-bit DPDD tables)."""
    return image_metrics(pred, scene.gt, mask=scene.mask)


# ---------------------------------------------------------------- DPDD layout
def dpdd_target_dir(root: str | Path, split: str = "test") -> Path:
    """``root`` itself if it holds images, else ``root/<split>_c/target`` (DPDD layout)."""
    root = Path(root)
    candidate = root / f"{split}_c" / "target"
    if candidate.is_dir():
        return candidate
    if (root / "target").is_dir() and root.name.endswith("_c"):
        return root / "target"
    return root
