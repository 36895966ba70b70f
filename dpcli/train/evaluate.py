"""Score a training candidate: a fixed synthetic validation set and the real data (Pixel 4, Canon).

Real data follows :mod:`dpcli.metrics.protocols` (the one implementation every part shares):
Pixel 4 views are preprocessed raw green planes replicated grey -> RGB, scored on the GT crop;
Canon GIF scenes are compared with their GT, label corner masked. A candidate is worth shipping
only if it beats the input (the combined image) on the real data.

    python -m dpcli.train.evaluate runs/bamb/checkpoint.pt --shared ../shared --json scores.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from dpcli.train.data import SynthDataset, fixed_batches
from dpcli.train.losses import psnr_batch

Runner = Callable[[Tensor, Tensor], Tensor]  # (left, right) (1, 3, H, W) -> AiF (1, 3, H, W)


def pair_runner(net: nn.Module, task: str, tile: int = 256, overlap: int = 32,
                device: str | torch.device = "cpu") -> Runner:
    """Tiled inference of a DP-pair network (``deblur_pair``) or a single-image one (``deblur_single``)
    on ``device`` (inputs and output stay on the CPU; only tiles move)."""
    from dpcli.tiling import run_tiled

    net.eval().to(device)

    @torch.no_grad()
    def run(left: Tensor, right: Tensor) -> Tensor:
        x = torch.cat([left, right], 1) if task == "deblur_pair" else (left + right) / 2
        return run_tiled(lambda t: net(t), x, tile=tile, overlap=overlap, multiple_of=16, device=device).cpu()

    return run


@torch.no_grad()
def synthetic_scores(run: Runner, count: int = 16, size: int = 192, camera: str = "phone", grey: bool = True,
                     seed: int = 2024) -> dict[str, float]:
    """Mean PSNR on fixed synthetic scenes (never seen in training: a separate seed stream)."""
    ds = SynthDataset(length=count, size=size, camera=camera, grey=grey)
    ds.augment_cfg.hflip = ds.augment_cfg.vflip = False
    pred, base = [], []
    for batch in fixed_batches(ds, count, 1, seed=seed):
        out = run(batch["left"], batch["right"])
        pred.append(psnr_batch(out, batch["target"]))
        base.append(psnr_batch(batch["combined"], batch["target"]))
    return {"synth_psnr": float(np.mean(pred)), "synth_psnr_input": float(np.mean(base))}


def run_on_pixel4_crop(run: Runner, scene: Any, margin: int) -> np.ndarray:
    """``run`` on the Pixel 4 GT crop plus ``margin`` px of context (grey replicated to RGB), its
    output cut back to the crop and averaged over channels: (1, 1008, 1344)."""
    from dpcli.metrics.protocols import PIXEL4_CROP

    r0, r1, c0, c1 = PIXEL4_CROP
    box = (slice(max(r0 - margin, 0), r1 + margin), slice(max(c0 - margin, 0), c1 + margin))
    left = torch.from_numpy(scene.left[:, box[0], box[1]]).expand(3, -1, -1)[None]
    right = torch.from_numpy(scene.right[:, box[0], box[1]]).expand(3, -1, -1)[None]
    out = run(left, right)[0].mean(0, keepdim=True).numpy()
    oy, ox = r0 - box[0].start, c0 - box[1].start
    return out[:, oy:oy + (r1 - r0), ox:ox + (c1 - c0)]


@torch.no_grad()
def pixel4_scores(run: Runner, pixel4_dir: Path, margin: int = 48, scene_ids: list[str] | None = None
                  ) -> dict[str, Any]:
    """PSNR/SSIM/MAE on the Pixel 4 scenes (grey replicated to RGB), and the input's figures.

    The network sees the GT crop plus ``margin`` px of context on every side (not the whole view).
    """
    from dpcli.metrics.protocols import list_pixel4_scenes, load_pixel4_scene, score_pixel4

    per_scene, rows = {}, []
    for sid in scene_ids or list_pixel4_scenes(pixel4_dir):
        scene = load_pixel4_scene(pixel4_dir, sid)
        pred = score_pixel4(run_on_pixel4_crop(run, scene, margin), scene)
        base = score_pixel4(scene.crop_view(scene.combined), scene)
        per_scene[sid] = {"pred": pred, "input": base}
        rows.append((pred, base))
    mean = lambda key, i: float(np.mean([r[i][key] for r in rows]))  # noqa: E731
    return {"pixel4_psnr": mean("psnr", 0), "pixel4_ssim": mean("ssim", 0), "pixel4_mae": mean("mae", 0),
            "pixel4_psnr_input": mean("psnr", 1), "pixel4_ssim_input": mean("ssim", 1),
            "pixel4_mae_input": mean("mae", 1), "pixel4_scenes": per_scene}


def coc_runner(net: nn.Module, tile: int = 256, overlap: int = 32, device: str | torch.device = "cpu") -> Runner:
    """Tiled signed defocus radius (px) of a pair network with task ``coc``: (1, 1, H, W)."""
    from dpcli.tiling import run_tiled

    net.eval().to(device)

    @torch.no_grad()
    def run(left: Tensor, right: Tensor) -> Tensor:
        out = run_tiled(net, [left, right], tile=tile, overlap=overlap, multiple_of=16, device=device)
        return out.cpu().mean(1, keepdim=True)

    return run


@torch.no_grad()
def synthetic_defocus_scores(run: Runner, count: int = 16, size: int = 192, camera: str = "phone",
                             grey: bool = True, seed: int = 2024) -> dict[str, float]:
    """Signed-radius error (px) and Spearman of a defocus-map network on fixed synthetic scenes."""
    from dpcli.metrics import spearman

    ds = SynthDataset(length=count, size=size, camera=camera, grey=grey)
    ds.augment_cfg.hflip = ds.augment_cfg.vflip = False
    err, rank, zero = [], [], []
    for batch in fixed_batches(ds, count, 1, seed=seed):
        pred, gt = run(batch["left"], batch["right"])[0, 0].numpy(), batch["defocus"][0, 0].numpy()
        err.append(float(np.abs(pred - gt).mean()))
        zero.append(float(np.abs(gt - np.median(gt)).mean()))  # the best constant map
        rank.append(spearman(pred, gt))
    return {"synth_defocus_mae_px": float(np.mean(err)), "synth_defocus_mae_px_constant": float(np.mean(zero)),
            "synth_defocus_spearman": float(np.mean(rank))}


@torch.no_grad()
def pixel4_defocus_scores(run: Runner, pixel4_dir: Path, margin: int = 48) -> dict[str, Any]:
    """Spearman rank correlation of the predicted map with the Pixel 4 GT defocus maps (which are
    normalised per scene, so only an affine-invariant measure applies), beside the classical map's."""
    from dpcli.classical import estimate_defocus_classical
    from dpcli.metrics import spearman
    from dpcli.metrics.protocols import list_pixel4_scenes, load_pixel4_scene

    per_scene = {}
    for sid in list_pixel4_scenes(pixel4_dir):
        sc = load_pixel4_scene(pixel4_dir, sid)
        pred = run_on_pixel4_crop(run, sc, margin)[0]
        classical, _ = estimate_defocus_classical(sc.left, sc.right)
        per_scene[sid] = {"spearman": spearman(pred, sc.gt_defocus, sc.valid),
                          "spearman_classical": spearman(sc.crop_view(classical), sc.gt_defocus, sc.valid)}
    mean = lambda key: float(np.mean([v[key] for v in per_scene.values()]))  # noqa: E731
    return {"pixel4_defocus_spearman": mean("spearman"),
            "pixel4_defocus_spearman_classical": mean("spearman_classical"), "pixel4_defocus_scenes": per_scene}


def canon_view_order(left: Tensor, right: Tensor, r: float = 4.0) -> bool:
    """True when (a, b) is (left, right) in our convention: the BaMBNet reblur loss prefers +r to -r
    (DPDD scenes are mostly behind the focal plane). Decided from the data, never from the GT."""
    from dpcli.optics import srgb_to_linear
    from dpcli.train.losses import BaMBNetCocLoss

    loss = BaMBNetCocLoss(r_max=int(r) + 1, lam=0.0, srgb=False)
    la, lb = srgb_to_linear(left), srgb_to_linear(right)
    pos = float(loss(la, lb, torch.full_like(la[:, :1], r))["geometric"])
    neg = float(loss(la, lb, torch.full_like(la[:, :1], -r))["geometric"])
    return pos <= neg


@torch.no_grad()
def canon_scores(run: Runner, canon_dir: Path) -> dict[str, Any]:
    """Canon DPDD-GIF scenes (8-bit palette, sRGB): PSNR/SSIM/MAE with the label corner masked."""
    from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene, score_canon

    rows, per_scene = [], {}
    for sid in list_canon_scenes(canon_dir):
        sc = load_canon_scene(canon_dir, sid)
        a, b = torch.from_numpy(sc.view_a)[None], torch.from_numpy(sc.view_b)[None]
        a_is_left = canon_view_order(a, b)
        left, right = (a, b) if a_is_left else (b, a)
        out = run(left, right)[0].clamp(0, 1).numpy()
        pred, base = score_canon(out, sc), score_canon(sc.combined, sc)
        per_scene[sid] = {"pred": pred, "input": base, "view_a_is_left": a_is_left}
        rows.append((pred, base))
    mean = lambda key, i: float(np.mean([r[i][key] for r in rows]))  # noqa: E731
    return {"canon_psnr": mean("psnr", 0), "canon_ssim": mean("ssim", 0), "canon_psnr_input": mean("psnr", 1),
            "canon_ssim_input": mean("ssim", 1), "canon_scenes": per_scene}


def load_candidate(path: Path, arch: str | None = None) -> tuple[nn.Module, str, str]:
    """(network, arch, task) from our checkpoint.pt (first network) or an exported safetensors."""
    from dpcli.models.registry import create_model, model_info

    path = Path(path)
    if path.suffix == ".safetensors":
        from dpcli.models.loading import read_checkpoint

        _, meta = read_checkpoint(path)
        arch = meta["arch"]
        net = create_model(arch, weights=path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=False)
        arch = arch or state.get("arch") or _arch_from_run(path)
        weights = next(iter(state["nets"].values()))
        net = create_model(arch)
        net.load_state_dict({k: v.float() for k, v in weights.items()})
        extra = state.get("extra", {}).get("search")
        if extra:  # learnt thresholds travel with the weights
            import dataclasses

            net.cfg = dataclasses.replace(net.cfg, thresholds=tuple(extra["thresholds"]))
    return net.float().eval(), arch, model_info(arch).task


def _arch_from_run(ckpt: Path) -> str:
    run = json.loads((ckpt.parent / "run.json").read_text()) if (ckpt.parent / "run.json").exists() else None
    if run:
        return run["recipe"]["stage_options"]["model"]
    log = (ckpt.parent / "train.log")
    raise FileNotFoundError(f"cannot tell the architecture of {ckpt}: no run.json beside it ({log})")


def evaluate(path: Path, shared: Path | None, synth_count: int = 16, tile: int = 256,
             grey: bool = True, camera: str = "phone", arch: str | None = None,
             device: str | torch.device = "cpu") -> dict[str, Any]:
    net, arch, task = load_candidate(path, arch)
    if task == "coc":
        run = coc_runner(net, tile=tile, device=device)
        scores = {"arch": arch, **synthetic_defocus_scores(run, synth_count, camera=camera, grey=grey)}
        if shared is not None and (shared / "data" / "pixel4").is_dir():
            scores |= pixel4_defocus_scores(run, shared / "data" / "pixel4")
        return scores
    run = pair_runner(net, task, tile=tile, device=device)
    scores: dict[str, Any] = {"arch": arch, **synthetic_scores(run, synth_count, camera=camera, grey=grey)}
    if shared is not None:
        if (shared / "data" / "pixel4").is_dir():
            scores |= pixel4_scores(run, shared / "data" / "pixel4")
        if (shared / "data" / "canon-dpdd-gif").is_dir():
            scores |= canon_scores(run, shared / "data" / "canon-dpdd-gif")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="checkpoint.pt of a run, or exported .safetensors")
    parser.add_argument("--shared", type=Path, default=None, help="../shared (real data)")
    parser.add_argument("--synth-count", type=int, default=16)
    parser.add_argument("--synth-camera", default="phone")
    parser.add_argument("--colour", action="store_true", help="colour synthetic scenes (default grey)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where the network runs: cpu | cuda | cuda:N")
    parser.add_argument("--arch", default=None, help="registry name when the checkpoint does not record it")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--export", default=None, metavar="TAG",
                        help="ship as ARCH.TAG (fp16 + manifest) IF it beats the input on the real Pixel 4 data")
    parser.add_argument("--training-data", default="synthetic (dpcli.synth)")
    parser.add_argument("--notes", default="", help="free text for the manifest entry (with --export)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scores = evaluate(args.weights, args.shared, args.synth_count, args.tile, not args.colour, args.synth_camera,
                      args.arch, args.device)
    text = json.dumps(scores, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    if args.export:
        print(ship_if_better(args.weights, scores, args.export, args.training_data, args.arch, args.notes))


def beats_input(scores: dict[str, Any], min_gain_db: float = 0.1, min_spearman: float = 0.6) -> bool:
    """The shipping rule: clearly better than doing nothing on the real Pixel 4 scenes: PSNR up by
    ``min_gain_db`` or more, and SSIM and MAE no worse than the input's. A defocus-map network has
    no "input" to beat: it must beat the best constant map on synthetic data and rank the real
    scenes' depths with a mean Spearman of at least ``min_spearman``."""
    if "pixel4_defocus_spearman" in scores:
        return (scores["pixel4_defocus_spearman"] >= min_spearman
                and scores["synth_defocus_mae_px"] < scores["synth_defocus_mae_px_constant"])
    return ("pixel4_psnr" in scores and scores["pixel4_psnr"] >= scores["pixel4_psnr_input"] + min_gain_db
            and scores["pixel4_ssim"] >= scores["pixel4_ssim_input"] and scores["pixel4_mae"] <= scores["pixel4_mae_input"])


def ship_if_better(path: Path, scores: dict[str, Any], tag: str, training_data: str, arch: str | None = None,
                   notes: str = "") -> str:
    """Export the candidate with every figure in its manifest entry, only if it beats the input."""
    if not beats_input(scores):
        if "pixel4_defocus_spearman" in scores:
            return (f"not shipped: Pixel 4 defocus Spearman {scores['pixel4_defocus_spearman']:.3f}, synthetic "
                    f"MAE {scores['synth_defocus_mae_px']:.2f} px vs {scores['synth_defocus_mae_px_constant']:.2f} "
                    "for the best constant map")
        return f"not shipped: Pixel 4 PSNR {scores.get('pixel4_psnr', float('nan')):.2f} dB vs input " \
               f"{scores.get('pixel4_psnr_input', float('nan')):.2f} dB"
    from dpcli.train.export import export_weights

    net, arch, _ = load_candidate(path, arch)
    state = torch.load(path, map_location="cpu", weights_only=False) if path.suffix != ".safetensors" else {}
    metrics = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
    recipe = {"checkpoint_step": state.get("step"), "config": state.get("config", {})}
    if state.get("averaged_steps"):
        recipe["averaged_steps"] = state["averaged_steps"]
    entry = export_weights(net, arch, tag, metrics=metrics, recipe=recipe, training_data=training_data, notes=notes)
    return f"shipped {entry['name']} sha256 {entry['sha256']}"


if __name__ == "__main__":
    main()
