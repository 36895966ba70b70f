"""Zero-shot stage-1 fusion on real data: the residual layer choice vs the learned fusion
(``dpcli.zeroshot.fusion_net``) vs a GT-picked oracle, per scene, with time.

Pixel 4 dev scenes (crop alone: the 1344x1008 GT crop of the views, no surrounding context),
blind (parametric kernels) and with ``--kernels`` (the calibration, 6x8 grid over the crop).
Stage 1 is solved once per scene and setting; every fusion re-blends the same layers. Scores:
the published protocol (:func:`dpcli.metrics.protocols.score_pixel4`). Time: stage 1 and each
fusion, at ``--threads``.

Canon DPDD GIF dev scenes with ``--canon``: colour, sRGB linearised, view b as left (the
disparity sign says so), default config; scored in sRGB against the GT with the label corner
masked, beside the combined capture (the input).

Usage:
  DPDEBLUR_SHARED=/work/shared python benchmarks/bench_fusion.py [--kernels] [--canon] \
      [--weights FILE] [--weights-dslr FILE] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(os.environ.get("DPDEBLUR_SHARED", "../shared"))


def oracle_weights(latent: torch.Tensor, gt: torch.Tensor, window: int = 15) -> torch.Tensor:
    """(L, H, W) one-hot weights of the layer closest to the GT over a ``window`` box: the ceiling
    of any per-pixel choice among these layers."""
    from dpcli.optics.windows import box_mean

    err = torch.stack([box_mean((layer.float() - gt).square().mean(0), window // 2) for layer in latent])
    return torch.nn.functional.one_hot(err.argmin(0), latent.shape[0]).permute(2, 0, 1).float()


def fusions(left: torch.Tensor, right: torch.Tensor, cfg, measured, nets: dict, gt: torch.Tensor, score
            ) -> dict[str, tuple[float, float]]:
    """{name: (PSNR, seconds)} of stage 1 fused by the residual choice, each net, and the oracle."""
    from dpcli.zeroshot.fusion import blend_layers, fuse_layers
    from dpcli.zeroshot.fusion_net import learned_weights
    from dpcli.zeroshot.kernels import prepare_kernels
    from dpcli.zeroshot.layers import solve_layers

    h, w = left.shape[-2:]
    t0 = time.perf_counter()
    setup = prepare_kernels(cfg, h, w, measured, (0, h, 0, w) if measured is not None else None)
    stack = solve_layers(left, right, setup, cfg)
    row = {"stage 1 (s)": (float("nan"), time.perf_counter() - t0)}
    fused = fuse_layers(left, right, stack, cfg, "residual")
    row["residual"] = (score(fused.image), fused.seconds)
    for name, net in nets.items():
        t = time.perf_counter()
        weights = learned_weights(left, right, stack, net, windows=cfg.choice_windows,
                                  temperature=cfg.choice_temperature)
        image = blend_layers(weights, stack.latent)
        row[name] = (score(image), time.perf_counter() - t)
    row["oracle (GT, w15)"] = (score(blend_layers(oracle_weights(stack.latent, gt), stack.latent)), 0.0)
    return row


def pixel_rows(pixel4: Path, sid: str, calibrated: bool, nets: dict) -> dict:
    from dpcli.metrics.protocols import PIXEL4_CROP, load_pixel4_scene, pixel4_kernels, score_pixel4
    from dpcli.zeroshot import ZeroShotConfig

    sc = load_pixel4_scene(pixel4, sid)  # swap_lr=True: our orientation
    r0, r1, c0, c1 = PIXEL4_CROP
    left = torch.as_tensor(np.ascontiguousarray(sc.left[:, r0:r1, c0:c1]))
    right = torch.as_tensor(np.ascontiguousarray(sc.right[:, r0:r1, c0:c1]))
    measured = tuple(k.numpy() for k in pixel4_kernels(pixel4)) if calibrated else None
    gt = torch.as_tensor(sc.gt)
    row = fusions(left, right, ZeroShotConfig(), measured, nets, gt, lambda img: score_pixel4(img.numpy(), sc)["psnr"])
    row["input"] = (score_pixel4(((left + right) / 2).numpy(), sc)["psnr"], 0.0)
    return row


def canon_rows(canon: Path, sid: str, nets: dict) -> dict:
    from dpcli.metrics.protocols import load_canon_scene, score_canon
    from dpcli.optics import linear_to_srgb, srgb_to_linear
    from dpcli.zeroshot import ZeroShotConfig

    sc = load_canon_scene(canon, sid)
    left = srgb_to_linear(torch.as_tensor(sc.view_b))  # view b is our left (positive disparity)
    right = srgb_to_linear(torch.as_tensor(sc.view_a))
    gt = srgb_to_linear(torch.as_tensor(sc.gt))
    score = lambda img: score_canon(linear_to_srgb(img.clamp(0, 1)).numpy(), sc)["psnr"]  # noqa: E731
    row = fusions(left, right, ZeroShotConfig(), None, nets, gt, score)
    row["input"] = (score_canon(sc.combined, sc)["psnr"], 0.0)
    return row


def print_table(title: str, rows: dict[str, dict]) -> None:
    names = list(next(iter(rows.values())))
    names = ["input"] + [n for n in names if n != "input"]
    print(f"\n{title}")
    print(f"{'method':>28} " + " ".join(f"{s:>14}" for s in rows) + f" {'mean':>14}")
    for n in names:
        vals = [rows[s][n] for s in rows]
        cells = [f"{p:7.2f} {t:5.1f}s" if n != "stage 1 (s)" else f"{'':>7} {t:5.1f}s" for p, t in vals]
        mean_p = np.mean([v[0] for v in vals])
        mean_t = np.mean([v[1] for v in vals])
        print(f"{n:>28} " + " ".join(f"{c:>14}" for c in cells) + f" {mean_p:7.3f} {mean_t:5.1f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixel4", type=Path, default=SHARED / "data" / "pixel4")
    ap.add_argument("--canon-dir", type=Path, default=SHARED / "data" / "canon-dpdd-gif")
    ap.add_argument("--scenes", default="002,006,009,013")
    ap.add_argument("--canon-scenes", default="00,01,02,03")
    ap.add_argument("--weights", action="append", default=[],
                    help="fusion weights file(s) for Pixel (default: shipped)")
    ap.add_argument("--weights-dslr", action="append", default=[], help="fusion weights file(s) for Canon")
    ap.add_argument("--kernels", action="store_true", help="also the calibrated stage 1")
    ap.add_argument("--canon", action="store_true", help="also the Canon dev scenes")
    ap.add_argument("--no-pixel", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from dpcli.zeroshot.fusion_net import default_fusion_weights, load_fusion_net

    def nets_of(files: list[str], domain: str) -> dict:
        if not files and default_fusion_weights(domain).is_file():
            files = [str(default_fusion_weights(domain))]
        return {f"learned {Path(f).parent.name}/{Path(f).stem}"[:28]: load_fusion_net(f) for f in files}

    out = {}
    if not args.no_pixel:
        nets = nets_of(args.weights, "phone")
        for calibrated in (False, True) if args.kernels else (False,):
            key = "Pixel 4, calibrated" if calibrated else "Pixel 4, blind"
            out[key] = {sid: pixel_rows(args.pixel4, sid, calibrated, nets) for sid in args.scenes.split(",")}
            print_table(f"{key} (crop alone; PSNR dB, seconds at {args.threads} threads)", out[key])
    if args.canon:
        nets = nets_of(args.weights_dslr or args.weights, "dslr")
        out["Canon"] = {sid: canon_rows(args.canon_dir, sid, nets) for sid in args.canon_scenes.split(",")}
        print_table(f"Canon DPDD GIF (sRGB, label masked; PSNR dB, seconds at {args.threads} threads)", out["Canon"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
