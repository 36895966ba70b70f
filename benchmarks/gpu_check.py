"""One prepared GPU check of every network family (issue 27), writing one JSON report.

Sections (each records its own errors; the report is written after every section, so a timeout
keeps what finished):
  parity     CUDA against CPU for every family's deblurring net: fp32 relative L2 (target < 1e-4),
             bf16 and fp16 PSNR against the CPU fp32 output (the drift). The reduced-config
             reference weights of shared/reference when present (Restormer, LaKDNet, BaMBNet,
             DefocusGAN), else the registered configuration with random weights (tiny test
             configurations in the smoke run).
  tiles      tiled against full frame on the GPU (PSNR between the two; Restormer's attention spans
             the frame, so tiles change its function), at 1120x1680.
  speed      seconds and peak GPU memory (torch.cuda.max_memory_allocated) at 1120x1680 and 24 MP
             (4000x6000), fp32 and bf16, released configurations (random weights: time does not
             depend on them): full frame where it fits the GPU, else the tiles `dpdeblur run` plans.
  zeroshot   zero-shot stage 1 on the GPU on a Pixel 4 scene (or a synthetic pair): seconds.
  train      training throughput: BaMBNet deblur and the DefocusGAN generator, ``--budget`` seconds
             each on synthetic DSLR scenes (samples/s, steps).

  python benchmarks/gpu_check.py --out /tmp/gpu_check            # on a CUDA machine (< 8 min on an H200)
  python benchmarks/gpu_check.py --out /tmp/smoke --smoke        # CPU smoke run: tiny sizes, seconds
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from _common import perceptual_options

SHARED = Path(os.environ.get("DPDEBLUR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
# shared/reference folder of an architecture's reference weights, where it is not the architecture's name
REFERENCE_FOLDERS = {"restormer_dual": "restormer_dual_pixel", "lakdnet_s_dual": "lakdnet_dual_pixel",
                     "lakdnet_s_single": "lakdnet_single"}


def _families() -> dict[str, tuple[str, str, str, str]]:
    """Every registered family's deblurring nets, read from the model registry: FAMILY (its DP net,
    else its single-image one) and FAMILY_single (a single-image net beside a DP one) -> (architecture
    at released size, its tiny ``*_test`` size, reference folder, task)."""
    from dpcli.models import list_families, list_models, model_info

    out = {}
    for fam in list_families():
        for task in ("deblur_pair", "deblur_single"):
            arch = fam.defaults.get(task)
            if arch is None:
                continue
            key = f"{fam.name}_single" if task == "deblur_single" and "deblur_pair" in fam.defaults else fam.name
            test = next(n for n in list_models(f"{fam.name}_*test") if model_info(n).task == task)
            out[key] = (arch, test, REFERENCE_FOLDERS.get(arch, arch), task)
    return out


FAMILIES = _families()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.float().clamp(0, 1) - b.float().clamp(0, 1)).square().mean())
    return 10 * math.log10(1.0 / max(mse, 1e-20))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


def _loaded(family: str, smoke: bool, released: bool = False):
    """LoadedModel of a family's deblurring net: reference weights when present, else random."""
    from dpcli.models import create_model, get_family, model_info
    from dpcli.models.loading import LoadedModel, load_model

    arch, test_arch, folder, task = FAMILIES[family]
    ref = SHARED / "reference" / folder / "official_state_dict.safetensors"
    if not released and not smoke and ref.is_file():
        # a family whose COC net has every key of its deblurring net is told which one the file is
        shares = get_family(model_info(arch).family).coc_shares_keys
        return load_model(None, task=task, weights=ref, arch=arch if shares else None), "reference"
    torch.manual_seed(0)
    name = test_arch if smoke else arch
    return LoadedModel(create_model(name).eval(), name, model_info(name)), "random"


def _views(family: str, h: int, w: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    img = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    if FAMILIES[family][3] == "deblur_single":
        return [img]
    return [img, torch.roll(img, 2, dims=-1)]


def _session(loaded, device: str, precision: str, tile):
    from dpcli.api import Deblurrer

    return Deblurrer(loaded, device=device, precision=precision, tile=tile)


def _run(session, views):
    return session.deblur_pair(*views) if len(views) == 2 else session.deblur_image(views[0])


def section_parity(args, device: str) -> dict:
    out = {}
    h, w = (64, 96) if args.smoke else (512, 768)
    for family in FAMILIES:
        loaded, source = _loaded(family, args.smoke)
        views = _views(family, h, w)
        cpu = _run(_session(loaded, "cpu", "fp32", 0), views)
        row = {"weights": source, "arch": loaded.arch, "size": f"{h}x{w}"}
        row["fp32_rel_l2"] = _rel(_run(_session(loaded, device, "fp32", 0), views), cpu)
        row["fp32_ok"] = row["fp32_rel_l2"] < 1e-4
        for precision in ("bf16", "fp16"):
            if device == "cpu" and precision == "fp16":
                continue
            try:
                row[f"{precision}_psnr_vs_cpu_fp32"] = _psnr(_run(_session(loaded, device, precision, 0), views), cpu)
            except Exception as exc:  # noqa: BLE001  (recorded, the check goes on)
                row[f"{precision}_error"] = str(exc).splitlines()[0]
        loaded.module.to("cpu")
        out[family] = row
    return out


def section_tiles(args, device: str) -> dict:
    out = {}
    h, w = (96, 128) if args.smoke else (1120, 1680)
    tile, overlap = (48, 16) if args.smoke else (512, 128)
    for family in FAMILIES:
        loaded, source = _loaded(family, args.smoke)
        views = _views(family, h, w, seed=1)
        full = _run(_session(loaded, device, "fp32", 0), views)
        from dpcli.api import Deblurrer

        tiled = _run(Deblurrer(loaded, device=device, tile=tile, tile_overlap=overlap), views)
        out[family] = {"weights": source, "size": f"{h}x{w}", "tile": tile, "overlap": overlap,
                       "tiled_vs_full_psnr_db": _psnr(tiled, full)}
        loaded.module.to("cpu")
    return out


def section_speed(args, device: str) -> dict:
    out = {}
    sizes = {"small": (96, 128), "larger": (128, 192)} if args.smoke else \
        {"1120x1680": (1120, 1680), "24MP": (4000, 6000)}
    for family in FAMILIES:
        loaded, _ = _loaded(family, args.smoke, released=True)
        for label, (h, w) in sizes.items():
            views = _views(family, h, w, seed=2)
            for precision in ("fp32", "bf16"):
                row = {"arch": loaded.arch}
                for tile in (0, None):  # full frame first; None = the plan of `dpdeblur run`
                    if device == "cuda":
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    key = "full" if tile == 0 else "planned"
                    session = _session(loaded, device, precision, tile)
                    try:
                        _run(session, [v[..., :64, :64] for v in views])  # warm-up (kernels, allocator)
                        if device == "cuda":
                            torch.cuda.synchronize()
                            torch.cuda.reset_peak_memory_stats()
                        start = time.perf_counter()
                        _run(session, views)
                        if device == "cuda":
                            torch.cuda.synchronize()
                        row[f"{key}_seconds"] = time.perf_counter() - start
                        if device == "cuda":
                            row[f"{key}_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                        row[f"{key}_tiles"] = str(session.tile_for(h, w))
                    except (torch.OutOfMemoryError, MemoryError, Exception) as exc:  # noqa: BLE001
                        row[f"{key}_error"] = str(exc).splitlines()[0][:200]
                    if device == "cuda":
                        torch.cuda.empty_cache()
                out[f"{family}/{label}/{precision}"] = row
        loaded.module.to("cpu")
    return out


def section_zeroshot(args, device: str) -> dict:
    from dpcli.zeroshot import make_config, zeroshot_deblur

    scene = SHARED / "data" / "pixel4"
    left = right = None
    source = "synthetic"
    if not args.smoke and scene.is_dir():
        from dpcli.io.pairs import discover_inputs, load_pair, probe_items

        items = [it for it in probe_items(discover_inputs([scene])) if hasattr(it, "paths")]
        for it in items:
            try:
                pair = load_pair(it, with_target=False)
                left, right, source = pair.left, pair.right, str(it.name)
                break
            except Exception:  # noqa: BLE001
                continue
    if left is None:
        h, w = (64, 64) if args.smoke else (1024, 1536)
        right = _views(next(iter(FAMILIES)), h, w, 3)[0][0].mean(0, keepdim=True).numpy()  # any family's first view
        left = np.roll(right, 2, axis=-1)  # our orientation: left displaced toward +x (focus in front)
    cfg = make_config("fast", output_stage="init", device=device)
    start = time.perf_counter()
    res = zeroshot_deblur(left, right, cfg)
    if device == "cuda":
        torch.cuda.synchronize()
    return {"scene": source, "size": f"{left.shape[-2]}x{left.shape[-1]}", "seconds": time.perf_counter() - start,
            "timings": {k: float(v) for k, v in res.timings.items()}}


def section_train(args, device: str) -> dict:
    from dpcli.train.runner import TrainRequest, run_training

    out = {}
    for family, stage in (("bambnet", "deblur"), ("defocusgan", "generator")):
        stage_options, note = perceptual_options(family)
        req = TrainRequest(model=family, stage=stage, data="synth", config="test" if args.smoke else "paper",
                           out=args.out / "train" / family, steps=2 if args.smoke else None,
                           crop=32 if args.smoke else 256, batch_size=2 if args.smoke else 8, device=device,
                           precision="fp32" if args.smoke else "bf16", time_budget=None if args.smoke else args.budget,
                           val_every=0, ckpt_every=0, val_count=0, synth_length=16 if args.smoke else 4096,
                           synth_options={"camera": "dslr", "fullframe_prob": 0.0} if args.smoke
                           else {"camera": "dslr"}, stage_options=stage_options, quiet=True, overwrite=True)
        result, _, recipe = run_training(req)
        rate = result.steps_done * recipe["batch_size"] / max(result.seconds, 1e-9)
        out[f"{family}/{stage}"] = {"steps": result.last_step, "seconds": result.seconds, "samples_per_s": rate,
                                    "crop": recipe["crop"], "batch": recipe["batch_size"], "config": recipe["config"],
                                    **({"note": note} if note else {})}
    return out


SECTIONS = {"parity": section_parity, "tiles": section_tiles, "speed": section_speed, "zeroshot": section_zeroshot,
            "train": section_train}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes and nets: seconds (CI)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --smoke")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds per network (2 nets)")
    args = ap.parse_args()
    device = args.device or ("cpu" if args.smoke else "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here (use --smoke for the CPU smoke run)")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"device": device, "smoke": args.smoke, "torch": torch.__version__, "host": platform.node(),
                    "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                    "shared_reference": (SHARED / "reference").is_dir(), "sections": {}}
    path = args.out / "gpu_check.json"
    failed = 0
    for name in args.sections.split(","):
        start = time.perf_counter()
        try:
            result = {"status": "ok", **SECTIONS[name](args, device)}
        except Exception as exc:  # noqa: BLE001  (one section's failure must not lose the others)
            failed += 1
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                      "trace": traceback.format_exc()[-2000:]}
        result["section_seconds"] = time.perf_counter() - start
        report["sections"][name] = result
        path.write_text(json.dumps(report, indent=2, default=float))
        print(f"{name}: {result['status']} in {result['section_seconds']:.1f} s", flush=True)
    print(f"report: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
