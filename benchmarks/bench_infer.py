"""Inference speed, peak memory and bf16 quality of the paper-size BaMBNet and DefocusGAN on CPU.

Every configuration runs in its own process (clean peak RSS: ``ru_maxrss``). Input: a real DP
scene (Canon DPDD test scene 1P0A2258 from ../shared/data/canon-dpdd-gif, 840x560, upsampled x2
bilinear to the full DPDD frame 1680x1120), or random data without the shared folder.

Weights: no trained weights exist yet, so the networks carry the authors' PyTorch default
initialisation (``../shared/reference/*/official_state_dict.safetensors``, seed 0) when present,
else our random init. Timing and memory do not depend on the weights; the bf16-vs-fp32 figures
are measured on these untrained networks' outputs for the real scene (PSNR between the two
outputs, and the change of PSNR against the ground truth).

Configurations:
  ref      fp32, NCHW, one full-frame pass, torch.no_grad: closest to how the authors' test
           script runs the same function (the baseline the 39 s target refers to);
  fp32     fp32, channels-last, inference mode, full frame when the memory budget allows,
           else the model's automatic tiles (dpcli.api default);
  bf16     the same under CPU bf16 autocast (AVX-512 BF16 / AMX);
  fp32-t / bf16-t   forced tiles (--tile, default 512).

Columns: wall time; process CPU time; MP/s and "x 39s" from CPU time / threads (the wall time
the run would take on an idle machine: this CPU is shared, wall times swing with other load);
"x ref" = CPU-time ratio to the ref configuration; peak RSS; PSNR of the output against the
full-frame fp32 pass (tiling + precision), bf16 against fp32 with the same tiles (precision
alone), and the change of PSNR against the ground truth caused by bf16.

Usage:
  python benchmarks/bench_infer.py                       # both models, all configurations
  python benchmarks/bench_infer.py --model bambnet --configs ref,fp32,bf16 --threads 2 --json
  python benchmarks/bench_infer.py --configs fp32,bf16 --size 6000x4000 --max-tiles 4   # 24 MP peak RSS
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from _common import in_own_process, peak_rss_gib, reset_peak_rss

SHARED = Path(os.environ.get("DPDEBLUR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ARCH = {"bambnet": ("bambnet_deblur", "deblur_pair"), "defocusgan": ("defocusgan_generator", "deblur_single")}


def _scene(size: tuple[int, int]):
    """(left, right, combined, ground truth) float32 (3, H, W), or random data without ../shared."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    folder = SHARED / "data" / "canon-dpdd-gif"
    h, w = size
    if not folder.is_dir():
        rng = np.random.default_rng(0)
        views = [torch.from_numpy(rng.random((3, h, w), dtype=np.float32)) for _ in range(4)]
        return (*views, "random")
    from dpcli.io.images import read_image

    names = ["canon_00_view_a.png", "canon_00_view_b.png", "canon_res_00_input_combined.png",
             "canon_res_00_ground_truth.png"]
    views = []
    for n in names:
        t = torch.from_numpy(read_image(folder / n).data)[None]
        views.append(F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0].clamp(0, 1))
    return (*views, "canon_00 (1P0A2258) x2")


def _loaded(model: str):
    import torch

    from dpcli.models import create_model, model_info
    from dpcli.models.loading import LoadedModel, load_model

    arch, task = ARCH[model]
    ref = SHARED / "reference" / arch / "official_state_dict.safetensors"
    if ref.is_file():
        return load_model(model, task=task, weights=ref, arch=arch), "authors' default init (seed 0)"
    torch.manual_seed(0)
    return LoadedModel(create_model(arch).eval(), arch, model_info(arch)), "our random init (seed 0)"


def child(args: argparse.Namespace) -> None:
    """Run one configuration and print one JSON line (time, RSS, output file)."""
    import numpy as np
    import torch

    from dpcli.api import Deblurrer
    from dpcli.device import retain_freed_memory

    torch.set_num_threads(args.threads)
    if args.config != "ref":  # the authors' script runs with the system allocator settings
        retain_freed_memory()
    width, height = map(int, args.size.split("x"))
    left, right, combined, gt, content = _scene((height, width))
    loaded, weights = _loaded(args.model)
    cfg = args.config
    precision = "bf16" if cfg.startswith("bf16") else "fp32"
    tile = args.tile if cfg.endswith("-t") else (0 if cfg == "ref" else None)
    session = Deblurrer(loaded, device="cpu", precision=precision, tile=tile, channels_last=cfg != "ref")
    views = (left, right) if args.model == "bambnet" else (combined,)
    del left, right, combined, gt  # only `views` stay alive, as in a CLI run
    reset_peak_rss()  # what counts is the run, not building the test input
    run = session.deblur_pair if args.model == "bambnet" else session.deblur_image
    times = []
    out = None
    ctx = torch.no_grad() if cfg == "ref" else torch.inference_mode()
    cpu = []
    class _Enough(Exception):
        pass

    def progress(done: int, total: int) -> None:  # --max-tiles: peak memory is reached within a few tiles
        if args.max_tiles and done >= args.max_tiles and done < total:
            raise _Enough

    with ctx:
        for _ in range(args.repeat):
            start, c0 = time.perf_counter(), time.process_time()
            try:
                out = run(*views, progress=progress)
            except _Enough:
                out = torch.zeros(1)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - c0)
    np.save(args.out, out.numpy())
    rss = peak_rss_gib()
    print(json.dumps({"model": args.model, "config": cfg, "seconds": min(times), "cpu_seconds": min(cpu),
                      "peak_rss_gib": rss,
                      "tile": session.tile_for(height, width, 3 * len(views)),
                      "weights": weights, "content": content, "megapixels": width * height / 1e6}))


def _psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="both", choices=["both", "bambnet", "defocusgan"])
    parser.add_argument("--configs", default="ref,fp32,bf16,fp32-t,bf16-t")
    parser.add_argument("--size", default="1680x1120", help="WIDTHxHEIGHT (DPDD frame: 1680x1120)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tile", type=int, default=512, help="tile side of the -t configurations")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-tiles", type=int, default=0,
                        help="stop each run after N tiles (memory of huge frames; times then mean nothing)")
    parser.add_argument("--authors-seconds", type=float, default=39.0, help="authors' code, full frame, fp32")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import numpy as np

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_infer_{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    models = ["bambnet", "defocusgan"] if args.model == "both" else [args.model]
    rows = []
    for model in models:
        outputs = {}
        for cfg in args.configs.split(","):
            out = tmp / f"{model}_{cfg}.npy"
            row = in_own_process(__file__, ["--child", "--model", model, "--config", cfg, "--size", args.size,
                                            "--threads", args.threads, "--tile", args.tile, "--repeat", args.repeat,
                                            "--max-tiles", args.max_tiles, "--out", out])
            if "error" in row:
                rows.append({"model": model, "config": cfg, "error": row["error"]})
                continue
            row["mp_per_s"] = row["megapixels"] / (row["cpu_seconds"] / args.threads)
            # on a shared CPU, CPU seconds / threads estimates the wall time of an idle machine
            row["x_authors"] = row["cpu_seconds"] / args.threads / args.authors_seconds
            if not args.json:  # progress: runs are long on a shared CPU
                print(f"  done {model} {cfg}: {row['seconds']:.1f} s ({row['cpu_seconds']:.1f} CPU s), "
                      f"peak RSS {row['peak_rss_gib']:.2f} GiB, "
                      f"tiles {row['tile']}", flush=True)
            outputs[cfg] = np.load(out)
            rows.append(row)
        _, _, _, gt, _ = _scene(tuple(map(int, args.size.split("x")))[::-1])
        gt = gt.numpy()
        for row in rows:
            if row.get("model") != model or "error" in row:
                continue
            o = outputs[row["config"]]
            if "ref" in outputs:  # tiling and precision together, vs the full-frame fp32 pass
                row["psnr_vs_ref_db"] = _psnr(o, outputs["ref"])
            twin = row["config"].replace("bf16", "fp32")
            if row["config"].startswith("bf16") and twin in outputs:  # precision alone
                row["psnr_bf16_vs_fp32_db"] = _psnr(o, outputs[twin])
                row["delta_psnr_gt_db"] = _psnr(o, gt) - _psnr(outputs[twin], gt)
    for f in tmp.glob("*.npy"):
        f.unlink()
    tmp.rmdir()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"size {args.size}, {args.threads} threads, torch threads per process; authors' full-frame fp32: "
          f"{args.authors_seconds:.0f} s")
    head = (f"{'model':<11}{'config':<8}{'tiles':>10}{'time s':>8}{'CPU s':>8}{'MP/s':>7}{'x 39s':>7}{'x ref':>7}"
            f"{'RSS GiB':>8}{'vs ref dB':>10}{'bf16/fp32 dB':>13}{'dPSNR GT':>9}")
    print(head)
    refs = {r["model"]: r["cpu_seconds"] for r in rows if r.get("config") == "ref" and "seconds" in r}
    nan = float("nan")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<11}{r['config']:<8} failed: {r['error']}")
            continue
        xref = r["cpu_seconds"] / refs[r["model"]] if r["model"] in refs else nan  # CPU time: robust to load
        tiles = "full" if not r["tile"] else "x".join(str(t or "all") for t in (r["tile"] if isinstance(
            r["tile"], list) else [r["tile"], r["tile"]]))
        print(f"{r['model']:<11}{r['config']:<8}{tiles:>10}{r['seconds']:>8.1f}{r['cpu_seconds']:>8.1f}"
              f"{r['mp_per_s']:>7.3f}"
              f"{r['x_authors']:>7.2f}{xref:>7.2f}{r['peak_rss_gib']:>8.2f}{r.get('psnr_vs_ref_db', nan):>10.1f}"
              f"{r.get('psnr_bf16_vs_fp32_db', nan):>13.1f}{r.get('delta_psnr_gt_db', nan):>9.3f}")
    if rows and "weights" in rows[0]:
        print(f"weights: {rows[0]['weights']}; content: {rows[0]['content']}")


if __name__ == "__main__":
    main()
