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

Stages (``python benchmarks/bench_infer.py stages``): where ``dpdeblur run`` with no flags spends
its time on a 12 and a 24 megapixel photo and DP pair: wall and CPU seconds and peak RSS per stage
(start-up, read, orientation, blur estimate, each network pass, each post step, deconvolution,
encode + write), timed inside the very command users run (:mod:`dpcli.timing`), one process per
row, with the CPU's name and its AVX-512 BF16 / AMX flags. Inputs are made once and cached
(``--inputs``): the photo is ``--source`` (default: the KDE wallpaper photo Volna when installed,
else a dead-leaves image) resized to the frame; "blurred" is it under a uniform 3 px disc (the
deconvolution path); the pair is rendered from it with half-disc kernels under a -2..5 px radius
ramp (blur that varies across the frame: the network path).

Usage:
  python benchmarks/bench_infer.py                       # both models, all configurations
  python benchmarks/bench_infer.py --model bambnet --configs ref,fp32,bf16 --threads 2 --json
  python benchmarks/bench_infer.py --configs fp32,bf16 --size 6000x4000 --max-tiles 4   # 24 MP peak RSS
  python benchmarks/bench_infer.py stages                # run's defaults at 12 and 24 MP, per stage
  python benchmarks/bench_infer.py stages --sizes 4000x3000 --kinds single,pair --json
  python benchmarks/bench_infer.py shards --photos 24 --procs 1,2,4   # torchrun throughput
  python benchmarks/bench_infer.py startup --runs 9     # `dpdeblur --help` and small runs, end to end

Start-up (``startup``): wall seconds of whole commands as a user types them, each run ``--runs``
times in a fresh process (median, min, max): ``dpdeblur --help``, ``dpdeblur run`` on the bundled
``examples/single/scene_d.png`` (512x384) and on the pair ``examples/pairs/scene_a``, and the same
single run again into the folder it wrote (nothing to do: "done earlier").

Shards (``shards``): one folder of small photos (the bundled examples' ground truths, cut and
mirrored into ``--photos`` 384x256 crops) run by ``torchrun --standalone --nproc_per_node P -m dpcli
run`` for each P in ``--procs``, each process with cores / P torch threads: wall seconds, photos per
minute, the largest process's peak RSS (``ru_maxrss`` of the children) and P x that as the bound
of the total.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from _common import cpu_facts, in_own_process, peak_rss_gib, reset_peak_rss

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


def networks(argv: list[str]) -> None:
    """Speed, memory and bf16 quality of the paper-size networks (the default command)."""
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
    args = parser.parse_args(argv)
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


# --- stages: where `dpdeblur run` spends its time ------------------------------------------------

KINDS = ("single", "blurred", "pair")
VOLNA = Path("/usr/share/wallpapers/Volna/contents/images/5120x2880.jpg")


def _inputs(folder: Path, size: tuple[int, int], source: Path | None) -> dict[str, list[Path]]:
    """The test files of one frame size (made once, then reused): kind -> input paths."""
    import numpy as np
    import torch

    from dpcli.io.images import read_image, write_image
    from dpcli.optics import linear_to_srgb, srgb_to_linear
    from dpcli.synth.degrade import dp_pair, radius_ramp, uniform_blur

    w, h = size
    folder = folder / f"{w}x{h}"
    files = {"single": [folder / "photo.png"], "blurred": [folder / "blurred.png"],
             "pair": [folder / "pair_L.png", folder / "pair_R.png"]}
    if all(p.is_file() for ps in files.values() for p in ps):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    if source is None and VOLNA.is_file():
        source = VOLNA
    if source is not None:
        photo = torch.from_numpy(read_image(source).data)[None]
        sh, sw = photo.shape[-2:]
        crop = min(sh, sw * h // w), min(sw, sh * w // h)  # the frame's aspect ratio, centred
        y, x = (sh - crop[0]) // 2, (sw - crop[1]) // 2
        photo = torch.nn.functional.interpolate(photo[..., y:y + crop[0], x:x + crop[1]], size=(h, w),
                                                mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    else:
        from dpcli.synth.deadleaves import dead_leaves

        photo = torch.from_numpy(dead_leaves(max(h, w), seed=0))[None, :, :h, :w].float()
    linear = srgb_to_linear(photo)

    def save(path: Path, lin: torch.Tensor) -> None:
        write_image(path, np.ascontiguousarray(linear_to_srgb(lin.clamp(0, 1))[0].numpy()), bit_depth=8)

    save(files["single"][0], linear)
    save(files["blurred"][0], uniform_blur(linear, "disc", 3.0))
    left, right = dp_pair(linear, radius_ramp(h, w, -2.0, 5.0))
    save(files["pair"][0], left)
    save(files["pair"][1], right)
    return files


def stages_child(args: argparse.Namespace) -> None:
    """One `dpdeblur run` in this process, timed per stage: prints one JSON line."""
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    import sys

    from dpcli.timing import peak_rss_gib, recording, stage

    sys.argv = ["dpdeblur", "run", *args.files, "-o", args.out, "--overwrite"]
    with recording() as rec:
        with stage("start-up (imports)"):
            from dpcli.cli import main as cli_main

        code = 0
        try:
            cli_main()
        except SystemExit as exc:
            code = exc.code or 0
    total_wall, total_cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    rows = [vars(r) for r in rec.rows()]
    # each outermost stage reset the peak mark: the run's peak is the largest of theirs (and the rest's)
    peak = max([peak_rss_gib()] + [r["peak_gib"] for r in rows if r["depth"] == 0])
    print(json.dumps({"code": code, "wall_s": total_wall, "cpu_s": total_cpu, "peak_gib": peak, "stages": rows}))


def stages(argv: list[str]) -> None:
    """Where `dpdeblur run` (no flags) spends its time, per stage, at 12 and 24 MP."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4000x3000,6000x4000", help="WIDTHxHEIGHT frames, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which inputs: single, blurred, pair")
    parser.add_argument("--source", type=Path, help="the photo the inputs are made from")
    parser.add_argument("--inputs", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "dpdeblur_stages",
                        help="where the made inputs are cached")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        stages_child(args)
        return
    import shutil
    import tempfile

    facts = cpu_facts()
    results = []
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        files = _inputs(args.inputs, (w, h), args.source)
        for kind in args.kinds.split(","):
            out = Path(tempfile.mkdtemp(prefix="stages_"))
            row = in_own_process(__file__, ["stages", "--child", "--out", out, "--files", *files[kind]])
            shutil.rmtree(out, ignore_errors=True)
            row.update(kind=kind, size=size, megapixels=w * h / 1e6)
            results.append(row)
            if not args.json:
                print(f"  done {kind} {size}: {row.get('wall_s', float('nan')):.1f} s", flush=True)
    if args.json:
        print(json.dumps({**facts, "rows": results}, indent=2))
        return
    print(f"CPU: {facts['cpu']}, {facts['cores']} cores; AVX-512: {'yes' if facts['avx512f'] else 'no'}, "
          f"AVX-512 BF16: {'yes' if facts['avx512_bf16'] else 'no'}, AMX: {'yes' if facts['amx'] else 'no'}")
    for row in results:
        print(stage_table(row))


def stage_table(row: dict) -> str:
    """One run's stages as a text table (nested stages indented, their peak: since their outermost stage
    opened; 'other' = the rest of the wall time)."""
    if "error" in row:
        return f"\n{row['kind']} {row['size']}: failed: {row['error']}"
    lines = [f"\n{row['kind']} {row['size']} ({row['megapixels']:.0f} MP): {row['wall_s']:.1f} s wall, "
             f"{row['cpu_s']:.1f} CPU-s, peak RSS {row['peak_gib']:.2f} GiB (exit {row['code']})",
             f"  {'stage':<40}{'calls':>6}{'wall s':>9}{'CPU s':>9}{'peak GiB':>10}"]
    top = 0.0
    for st in row["stages"]:
        name = "  " * st["depth"] + st["name"]
        peak = f"{st['peak_gib']:>10.2f}"
        lines.append(f"  {name:<40}{st['calls']:>6}{st['wall_s']:>9.2f}{st['cpu_s']:>9.2f}{peak}")
        top += st["wall_s"] if st["depth"] == 0 else 0.0
    lines.append(f"  {'other (start-up, planning, summary)':<40}{'':>6}{row['wall_s'] - top:>9.2f}")
    return "\n".join(lines)


# --- shards: a folder over torchrun processes ----------------------------------------------------

def _photos(folder: Path, n: int) -> Path:
    """``n`` 384x256 photos cut and mirrored from the bundled examples' ground truths (made once)."""
    import numpy as np

    from dpcli.io.images import read_image, write_image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == n:
        return folder
    sources = sorted((Path(__file__).resolve().parents[1] / "examples" / "ground_truth").glob("*.png"))
    for i in range(n):
        img = read_image(sources[i % len(sources)]).data
        y, x = (i // len(sources)) % 2 * 64, (i // (2 * len(sources))) % 2 * 64
        crop = img[:, y:y + 256, x:x + 384] if img.shape[1] >= y + 256 and img.shape[2] >= x + 384 else img[:, :256, :384]
        crop = crop[:, :, ::-1] if (i // len(sources)) % 3 == 2 else crop
        write_image(folder / f"photo_{i:03d}.png", np.ascontiguousarray(crop), bit_depth=8, overwrite=True)
    return folder


def _shard_run(folder: Path, procs: int) -> dict:
    """``dpdeblur run FOLDER`` over ``procs`` torchrun processes of cores / procs threads each."""
    import resource
    import shutil
    import subprocess
    import tempfile

    cores = os.cpu_count() or 1
    out = Path(tempfile.mkdtemp(prefix="shards_"))
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // procs)))
    start = time.perf_counter()
    res = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", str(procs), "-m", "dpcli", "run",
                          str(folder), "-o", str(out)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    written = len(list(out.glob("*.png")))
    shutil.rmtree(out, ignore_errors=True)
    peak = use.ru_maxrss / 2**20  # the largest process (GiB; Linux reports KiB)
    return {"threads": max(1, cores // procs), "code": res.returncode, "written": written, "wall_s": wall,
            "cpu_s": use.ru_utime + use.ru_stime, "photos_per_min": 60 * written / wall,
            "peak_gib_per_process": peak, "peak_gib_bound": procs * peak}


def shards(argv: list[str]) -> None:
    """Throughput of a folder run split over 1, 2, 4 torchrun processes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--procs", default="1,2,4")
    parser.add_argument("--inputs", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "dpdeblur_shards")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import shutil

    if args.child:  # one torchrun in this process: its children's peak is this run's alone
        print(json.dumps(_shard_run(args.folder, args.child)))
        return
    if shutil.which("torchrun") is None:
        raise SystemExit("torchrun not found (it comes with torch)")
    folder = _photos(args.inputs / f"n{args.photos}", args.photos)
    rows = []
    for procs in map(int, args.procs.split(",")):
        row = in_own_process(__file__, ["shards", "--child", procs, "--folder", folder])
        rows.append({"procs": procs, **row})
        if not args.json:
            print(f"  done {procs} process(es): {row.get('wall_s', float('nan')):.1f} s", flush=True)
    if args.json:
        print(json.dumps({**cpu_facts(), "photos": args.photos, "rows": rows}, indent=2))
        return
    facts, cores = cpu_facts(), os.cpu_count() or 1
    print(f"{args.photos} photos of 384x256 px, `dpdeblur run` defaults; CPU: {facts['cpu']}, {cores} cores")
    print(f"{'procs':>6}{'threads':>8}{'wall s':>9}{'CPU s':>9}{'photos/min':>11}{'peak GiB/proc':>14}{'<= total GiB':>13}")
    for r in rows:
        if "error" in r:
            print(f"{r['procs']:>6}  failed: {r['error']}")
            continue
        print(f"{r['procs']:>6}{r['threads']:>8}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['photos_per_min']:>11.1f}"
              f"{r['peak_gib_per_process']:>14.2f}{r['peak_gib_bound']:>13.2f}"
              + ("" if r["code"] == 0 and r["written"] == args.photos else f"  (exit {r['code']}, {r['written']} written)"))


# --- start-up: whole commands, end to end -----------------------------------------------------------

def startup(argv: list[str]) -> None:
    """Wall seconds of `dpdeblur --help` and of small `run`s, each in a fresh process."""
    import shutil
    import statistics
    import subprocess
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    exe = shutil.which("dpdeblur")
    if exe is None:
        raise SystemExit("dpdeblur is not installed here: pip install -e .")
    examples = Path(__file__).resolve().parents[1] / "examples"
    out = Path(tempfile.mkdtemp(prefix="startup_"))
    single, pair = examples / "single" / "scene_d.png", [examples / "pairs" / f"scene_a_{v}.png" for v in "LR"]
    cases = [("dpdeblur --help", ["--help"], None),
             ("run, one 512x384 photo", ["run", single, "-o", out / "s"], out / "s"),
             ("run, one 512x384 DP pair", ["run", "--pair", *pair, "-o", out / "p"], out / "p"),
             ("run again: done earlier", ["run", single, "-o", out / "k"], None)]
    subprocess.run([exe, "run", str(single), "-o", str(out / "k")], capture_output=True, check=True)
    facts = cpu_facts()
    print(f"CPU: {facts['cpu']}, {os.cpu_count()} cores; {args.runs} runs each, fresh process each")
    print(f"  {'command':<28}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, cmd, clean in cases:
        times = []
        for _ in range(args.runs):
            if clean is not None:
                shutil.rmtree(clean, ignore_errors=True)
            start = time.perf_counter()
            res = subprocess.run([exe, *map(str, cmd)], capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if res.returncode != 0:
                raise SystemExit(f"{label}: exit {res.returncode}: {res.stderr.strip()[-300:]}")
        print(f"  {label:<28}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}", flush=True)
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    from _common import subcommands

    subcommands({"networks": networks, "stages": stages, "shards": shards, "startup": startup}, default="networks")
