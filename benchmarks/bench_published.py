"""Restormer and LaKDNet on the CPU: seconds and peak memory per frame, and what tiles cost in dB.

Two tables (each row in its own process for a clean peak RSS):

1. ``--part time``: the released configurations (Restormer 26.1 M, LaKDNet-S 17.7 M parameters;
   random weights: time and memory do not depend on them) at the full DPDD frame 1120x1680 and
   at 24 MP (6000x4000), fp32 and bf16, as ``dpdeblur run`` plans them (full frame when it fits
   the 2 GiB budget, else tiles; ``--tile`` forces a side). One Restormer tile of 384x384 takes
   about a minute of one core, so a frame is NOT run whole here: one tile of the planned size is
   timed and measured, and the frame's seconds are extrapolated as tiles x seconds per tile (the
   tiles are independent and identical in work), peak memory as the tile's peak RSS plus the
   frame buffers the tiler holds (views, output, blend weights: 4 bytes x (in + out + 1) per px).
   The full-frame activation memory is estimated from the measured bytes per pixel.
2. ``--part tiles``: tiled against full frame on the four real Canon DPDD dev scenes
   (../shared/data/canon-dpdd-gif, 840x560 DP pairs with ground truth) with the reduced-config
   reference weights of ../shared/reference (the authors' classes, perturbed default init: NOT
   trained, so their PSNR against the ground truth means nothing): the output difference tiled
   vs full in dB (PSNR of the tiled output against the full-frame one) and the change of PSNR
   against the ground truth, per tile size and overlap. Restormer's channel attention spans the
   whole frame, so tiles change its function; LaKDNet is convolutional (local).

Usage (2 shared cores: keep runs short; figures in docs/benchmarks.md):
  python benchmarks/bench_published.py --part tiles
  python benchmarks/bench_published.py --part time --tile-probe 256
  python benchmarks/bench_published.py --part time --archs restormer_dual --precisions fp32 --json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _common import in_own_process, peak_rss_gib

SHARED = Path(os.environ.get("DPDEBLUR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SIZES = {"DPDD 1120x1680": (1120, 1680), "24 MP 4000x6000": (4000, 6000)}
REFERENCE = {"restormer_dual": "restormer_dual_pixel", "restormer_single": "restormer_single",
             "lakdnet_s_dual": "lakdnet_dual_pixel", "lakdnet_s_single": "lakdnet_single"}


# --- part 1: time and memory -------------------------------------------------------------------------

def _probe(arch: str, side: int, precision: str) -> dict:
    """In this process: one forward pass of ``arch`` (released configuration) on a side x side tile."""
    import torch

    from dpcli.device import autocast
    from dpcli.models import create_model

    torch.manual_seed(0)
    net = create_model(arch).eval()
    x = torch.rand(1, 6 if net.cfg.dual_pixel else 3, side, side)
    base = peak_rss_gib()
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode(), autocast(torch.device("cpu"), precision):
        net(x)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "peak_gib": peak_rss_gib(), "activation_bytes_per_px": (peak_rss_gib() - base) * 2**30 / side**2,
            "params": sum(p.numel() for p in net.parameters())}


def _plan(arch: str, probe: dict, h: int, w: int, precision: str, tile: int | None) -> dict:
    """The tiles ``dpdeblur run`` would use (its own planner), the extrapolated seconds and peak memory."""
    from dpcli.api import Deblurrer
    from dpcli.models import create_model, model_info
    from dpcli.models.loading import LoadedModel
    from dpcli.tiling import tile_grid

    module = create_model(arch)
    dual = module.cfg.dual_pixel
    session = Deblurrer(LoadedModel(module, arch, model_info(arch)), device="cpu", precision=precision, tile=tile,
                        channels_last=False)
    views, out_ch = (6 if dual else 3), 3
    plan = session.tile_for(h, w, views, out_ch)
    frame_bytes = 4 * h * w * (views + out_ch + 1)
    m, overlap = module.multiple_of, module.tiling.overlap
    th, tw = plan if isinstance(plan, tuple) else (plan, plan)
    hp, wp = -(-h // m) * m, -(-w // m) * m
    (ys, th2), (xs, tw2) = (tile_grid(hp, th or hp, overlap, m), tile_grid(wp, tw or wp, overlap, m))
    work_px = len(ys) * len(xs) * th2 * tw2
    per_px = probe["cpu_seconds"] / probe["side"] ** 2
    return {"plan": "full frame" if plan == 0 else f"{len(ys) * len(xs)} tiles of {th2}x{tw2}",
            "tiles": len(ys) * len(xs), "cpu_seconds_est": per_px * work_px,
            "peak_gib_est": probe["peak_gib"] + probe["activation_bytes_per_px"] * (th2 * tw2 - probe["side"] ** 2)
            / 2**30 + frame_bytes / 2**30,
            "full_frame_activation_gib_est": probe["activation_bytes_per_px"] * h * w / 2**30}


def part_time(args) -> list[dict]:
    rows, probes = [], {}
    if args.reuse:
        probes = json.loads(Path(args.reuse).read_text())
    for arch in args.archs.split(","):
        for precision in args.precisions.split(","):
            probe = probes.get(f"{arch}/{precision}")
            if probe is None:
                probe = in_own_process(__file__, ["--probe", arch, "--tile-probe", args.tile_probe,
                                                  "--precisions", precision], env={**os.environ, "OMP_NUM_THREADS": "1"})
                if "error" in probe:
                    rows.append({"arch": arch, "precision": precision, "error": probe["error"]})
                    continue
                probes[f"{arch}/{precision}"] = probe
            for label, (h, w) in SIZES.items():
                rows.append({"arch": arch, "precision": precision, "size": label, "probe_tile": probe["side"],
                             "probe_cpu_s": probe["cpu_seconds"], "probe_peak_gib": probe["peak_gib"],
                             **_plan(arch, probe, h, w, precision, args.tile)})
    PROBES.update(probes)
    return rows


PROBES: dict = {}


def print_time(rows: list[dict]) -> None:
    print(f"{'arch':17} {'prec':5} {'size':16} {'run plans':24} {'CPU s (est)':>11} {'peak GiB (est)':>14} "
          f"{'full-frame act. GiB':>19}   probe: {'tile':>4} {'CPU s':>6} {'RSS GiB':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['arch']:17} {r['precision']:5} error: {r['error']}")
            continue
        print(f"{r['arch']:17} {r['precision']:5} {r['size']:16} {r['plan']:24} {r['cpu_seconds_est']:11.0f} "
              f"{r['peak_gib_est']:14.2f} {r['full_frame_activation_gib_est']:19.1f}   "
              f"       {r['probe_tile']:4d} {r['probe_cpu_s']:6.1f} {r['probe_peak_gib']:7.2f}")


# --- part 2: tiles against full frame on real scenes ----------------------------------------------------

def _canon_scenes() -> list[tuple[str, object, object, object]]:
    import numpy as np

    from dpcli.io.images import read_image

    root = SHARED / "data" / "canon-dpdd-gif"
    out = []
    for k in range(4):
        a, b = (read_image(root / f"canon_{k:02d}_view_{v}.png").data for v in "ab")
        gt = read_image(root / f"canon_res_{k:02d}_ground_truth.png").data
        out.append((f"canon_{k:02d}", np.ascontiguousarray(a), np.ascontiguousarray(b), gt))
    return out


def _psnr(x, y) -> float:
    import numpy as np

    mse = float(np.mean((np.clip(x, 0, 1) - np.clip(y, 0, 1)) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-20))


def part_tiles(args) -> list[dict]:
    import numpy as np
    import torch

    from dpcli.api import Deblurrer
    from dpcli.models.loading import load_model

    torch.set_num_threads(1)
    scenes = _canon_scenes()
    configs = [tuple(int(v) for v in c.split("/")) for c in args.tiles.split(",")]
    rows = []
    for arch, folder in REFERENCE.items():
        if not any(arch.startswith(a) for a in args.archs.split(",")):
            continue
        dual = arch.endswith("dual")
        loaded = load_model(None, task="deblur_pair" if dual else "deblur_single",
                            weights=SHARED / "reference" / folder / "official_state_dict.safetensors")

        def run(a, b, tile, overlap):
            s = Deblurrer(loaded, device="cpu", tile=tile, tile_overlap=overlap)
            return s.deblur_pair(a, b) if dual else s.deblur_image((a + b) / 2)

        for name, a, b, gt in scenes:
            full = run(a, b, 0, None)
            for tile, overlap in configs:
                tiled = run(a, b, tile, overlap)
                rows.append({"arch": arch, "scene": name, "tile": tile, "overlap": overlap,
                             "tiled_vs_full_db": _psnr(tiled, full),
                             "delta_psnr_gt_db": _psnr(tiled, gt) - _psnr(full, gt)})
    return rows


def print_tiles(rows: list[dict]) -> None:
    import numpy as np

    print("tiled vs full frame, 4 Canon dev scenes (840x560), reduced-config reference weights (untrained)")
    print(f"{'arch':17} {'tile/overlap':>12} {'tiled vs full (dB, min)':>24} {'|dPSNR vs GT| (dB, max)':>24}")
    keys = sorted({(r["arch"], r["tile"], r["overlap"]) for r in rows})
    for arch, tile, overlap in keys:
        sel = [r for r in rows if (r["arch"], r["tile"], r["overlap"]) == (arch, tile, overlap)]
        print(f"{arch:17} {f'{tile}/{overlap}':>12} {min(r['tiled_vs_full_db'] for r in sel):24.1f} "
              f"{max(abs(r['delta_psnr_gt_db']) for r in sel):24.4f}")
    del np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("time", "tiles"), default="tiles")
    ap.add_argument("--archs", default="restormer_dual,lakdnet_s_dual")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--tile-probe", type=int, default=256, help="side of the timed tile (px)")
    ap.add_argument("--tile", type=int, default=None, help="force this tile side for the plan (0 = full frame)")
    ap.add_argument("--tiles", default="256/64,384/128,512/128", help="tile/overlap pairs for --part tiles")
    ap.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--save-probes", default=None, help="write the timed tiles' figures here (JSON)")
    ap.add_argument("--reuse", default=None, help="plan from probes saved with --save-probes (no timing)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.probe:
        base = peak_rss_gib()
        out = _probe(args.probe, args.tile_probe, args.precisions)
        print(json.dumps({**out, "side": args.tile_probe, "base_gib": base}))
        return
    rows = part_time(args) if args.part == "time" else part_tiles(args)
    if args.save_probes and args.part == "time":
        Path(args.save_probes).write_text(json.dumps(PROBES, indent=2))
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.part == "time":
        print_time(rows)
    else:
        print_tiles(rows)


if __name__ == "__main__":
    main()
