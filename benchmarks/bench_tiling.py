"""Tiled inference benchmark: peak memory and time vs image size, tile-size sweep, global pooling.

Sections (``--sections``, default all):
  memory     peak RSS (VmHWM, one subprocess per run) and time for 2, 8 and 24 MP inputs.
             ``--nets standin`` runs the whole frame through a stand-in of BaMBNet's width (64 ch,
             3x3 convs); ``bambnet_deblur`` (paper size, random init) is too slow on 2 shared
             cores for a full 24 MP pass (about 100 s/MP), so it runs ``--max-tiles`` tiles with
             the full-frame buffers allocated and its time is extrapolated (marked ``~``).
  tiles      per-tile time of paper-size BaMBNet for several tile sizes -> cost per output MP
             (overlap counted), channels-last vs contiguous, effective receptive field.
  pooling    tiled vs full-frame difference on real Pixel 4 DP content (scene 002, central
             crop), with global channel-attention pooling and with local pooling (TLC).
  precision  bf16 vs fp32 on the same crop: PSNR of bf16 output against fp32, and time.

Timings are single runs (no repeats: the 2 cores are shared with other jobs; expect noise).
Networks are randomly initialised (no trained weights are shipped); the pooling section needs
../shared/data (DPDEBLUR_SHARED).

Example (the runs behind the figures in the tiling report):
    python benchmarks/bench_tiling.py --sections memory --nets standin,bambnet_deblur --max-tiles 1 --channels-last
    python benchmarks/bench_tiling.py --sections tiles
    DPDEBLUR_SHARED=/work/shared python benchmarks/bench_tiling.py --sections pooling,precision
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from pathlib import Path

import torch
from _common import in_own_process, peak_rss_gib
from torch import nn

from dpcli.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    effective_receptive_field,
    run_tiled,
    tile_grid,
    use_local_pooling,
)

SIZES = {2: (1155, 1732), 8: (2309, 3464), 24: (4000, 6000)}  # (H, W), 3:2 like a camera frame


class StandIn(nn.Module):
    """BaMBNet-width stand-in: 3x3 conv 6->64, three 3x3 convs 64->64 (ReLU), 3x3 conv 64->3."""

    def __init__(self, in_chans: int = 6, width: int = 64, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.in_chans = in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def build(net: str) -> tuple[nn.Module, int]:
    torch.manual_seed(0)
    if net == "standin":
        return StandIn().eval(), 6
    from dpcli.models import create_model

    model = create_model(net).eval()
    return model, int(model.cfg.in_chans)


class _Stop(Exception):
    pass


# ------------------------------------------------------------------------------------------ memory


def child_memory(args: argparse.Namespace) -> None:
    """One run in this (fresh) process; prints a JSON line."""
    torch.set_num_threads(args.threads)
    model, in_chans = build(args.net)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    base = peak_rss_gib()
    h, w = args.h, args.w
    x = torch.rand(1, in_chans, h, w, generator=torch.Generator().manual_seed(0))
    ys, th = tile_grid(-(-h // 16) * 16, args.tile, args.overlap, 16)
    xs, tw = tile_grid(-(-w // 16) * 16, args.tile, args.overlap, 16)
    total = len(ys) * len(xs)
    calls = {"n": 0}

    def fn(t: torch.Tensor) -> torch.Tensor:
        if args.max_tiles and calls["n"] >= args.max_tiles:
            raise _Stop
        calls["n"] += t.shape[0]
        return model(t)

    t0 = time.perf_counter()
    try:
        out = run_tiled(fn, x, tile=args.tile, overlap=args.overlap, multiple_of=16, device="cpu",
                        channels_last=args.channels_last)
        assert out.shape[-2:] == (h, w)
    except _Stop:
        pass
    dt = time.perf_counter() - t0
    print(json.dumps({"net": args.net, "h": h, "w": w, "tiles_run": calls["n"], "tiles_total": total,
                      "seconds": dt, "est_seconds": dt / max(calls["n"], 1) * total,
                      "base_gib": base, "peak_gib": peak_rss_gib(), "in_chans": in_chans}))


def section_memory(args: argparse.Namespace) -> list[dict]:
    rows = []
    for net in args.nets:
        for mp in args.megapixels:
            h, w = SIZES[mp]
            cmd = ["--child", "memory", "--net", net, "--h", h, "--w", w, "--tile", args.tile, "--overlap", args.overlap,
                   "--threads", args.threads, "--max-tiles", args.max_tiles if net != "standin" else 0]
            cmd += ["--channels-last"] if args.channels_last else []
            row = in_own_process(__file__, cmd)
            if "error" in row:
                raise SystemExit(f"{net} {mp} MP: {row['error']}")
            row["mp"] = mp
            rows.append(row)
            print_memory([row], header=len(rows) == 1)
    return rows


def print_memory(rows: list[dict], header: bool = True) -> None:
    if header:
        print(f"\n## memory (tile {ARGS.tile}, overlap {ARGS.overlap}, {ARGS.threads} threads, fp32, CPU, "
              f"{'channels_last' if ARGS.channels_last else 'contiguous'})")
        print("| net | input | buffers GiB | peak RSS GiB | tiles run | time s | s/MP |")
        print("|---|---|---|---|---|---|---|")
    for r in rows:
        mpx = r["h"] * r["w"] / 1e6
        buffers = r["h"] * r["w"] * (r["in_chans"] + 3 + 1) * 4 / 2**30  # input + output + weight sum
        partial = r["tiles_run"] < r["tiles_total"]
        t = f"~{r['est_seconds']:.0f} (extrapolated)" if partial else f"{r['seconds']:.1f}"
        print(f"| {r['net']} | {r['w']}x{r['h']}x{r['in_chans']} ({mpx:.1f} MP) | {buffers:.2f} | "
              f"{r['peak_gib']:.2f} | {r['tiles_run']}/{r['tiles_total']} | {t} | "
              f"{r['est_seconds'] / mpx:.1f} |", flush=True)


# ------------------------------------------------------------------------------------------- tiles


def section_tiles(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model, cin = build(args.model)
    print(f"\n## tile-size sweep: {args.model} (random init), overlap {args.overlap}, "
          f"{args.threads} threads, fp32")
    print("| tile | memory format | s/tile | output px/tile | s per output MP |")
    print("|---|---|---|---|---|")
    with torch.inference_mode():
        model(torch.rand(1, cin, 64, 64))  # warm-up
    for tile in args.tiles:
        for cl in ([False, True] if tile == DEFAULT_TILE else [False]):
            m = model.to(memory_format=torch.channels_last) if cl else model.to(memory_format=torch.contiguous_format)
            x = torch.rand(1, cin, tile, tile)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                t0 = time.perf_counter()
                m(x)
                dt = time.perf_counter() - t0
            core = (tile - args.overlap) ** 2
            print(f"| {tile} | {'channels_last' if cl else 'contiguous'} | {dt:.2f} | {core} | "
                  f"{dt / core * 1e6:.1f} |", flush=True)
    model.to(memory_format=torch.contiguous_format)
    r = effective_receptive_field(model, cin, size=args.erf_size, mass=0.99)
    print(f"effective receptive field (random init, {args.erf_size}px noise): 99% of the input gradient "
          f"of the centre pixel within radius {r} px", flush=True)


# ------------------------------------------------------------------------------------ real content


def pixel4_crop(ch: int, cw: int) -> torch.Tensor:
    """Scene 002 of the Pixel 4 set, preprocessed per docs/CONVENTIONS.md -> (1, 6, ch, cw) cat(L, R)."""
    from dpcli.io.raw import read_raw_planes

    root = Path(os.environ.get("DPDEBLUR_SHARED", "/work/shared")) / "data" / "pixel4"
    cal = root / "calibration"
    left, right = read_raw_planes(root / "002_left.png", root / "002_right.png",
                                  white_sheet_left=cal / "white_sheet_left.png",
                                  white_sheet_right=cal / "white_sheet_right.png")
    lt, rt = torch.from_numpy(left), torch.from_numpy(right)
    h, w = lt.shape[-2:]
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    lt, rt = lt[:, y0:y0 + ch, x0:x0 + cw], rt[:, y0:y0 + ch, x0:x0 + cw]
    # grey raw green -> 3 channels as the API does; sRGB-like gamma so values span [0, 1]
    x = torch.cat([lt.expand(3, -1, -1), rt.expand(3, -1, -1)])[None].clamp(0, 1) ** (1 / 2.2)
    return x.contiguous()


def diff_stats(a: torch.Tensor, b: torch.Tensor) -> str:
    d = (a - b).abs()
    mse = float((d ** 2).mean())
    psnr = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
    return f"{float(d.max()):.2e} | {float(d.mean()):.2e} | {psnr:.1f}"


def section_pooling(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model, _ = build(args.model)
    model = model.to(memory_format=torch.channels_last)  # the CPU default of dpcli.api (faster here)
    ch, cw = (int(v) for v in args.crop.split("x"))
    x = pixel4_crop(ch, cw)
    tile, ov, win = args.pool_tile, args.pool_overlap, args.pool_window
    print(f"\n## tiled vs full frame, real content: Pixel 4 scene 002, central {cw}x{ch} (WxH) crop, "
          f"{args.model} (random init), tile {tile}, overlap {ov}")
    print("| pooling | compared | max abs diff | mean abs diff | PSNR dB | time s (tiled / full) |")
    print("|---|---|---|---|---|---|")
    outs: dict[str, torch.Tensor] = {}
    for mode in ("global", "local"):
        with (use_local_pooling(model, win) if mode == "local" else contextlib.nullcontext()):
            t0 = time.perf_counter()
            tiled = run_tiled(model, x, tile=tile, overlap=ov, multiple_of=16, channels_last=True)
            t1 = time.perf_counter()
            full = run_tiled(model, x, tile=0, overlap=0, multiple_of=16, channels_last=True)
            t2 = time.perf_counter()
        outs[mode], outs[mode + "_tiled"] = full, tiled
        label = "global (AdaptiveAvgPool2d(1))" if mode == "global" else f"local window {win} px (TLC)"
        print(f"| {label} | tiled vs full frame | {diff_stats(tiled, full)} | {t1 - t0:.0f} / {t2 - t1:.0f} |",
              flush=True)
    print(f"| local vs global | tiled local vs full-frame global | "
          f"{diff_stats(outs['local_tiled'], outs['global'])} | - |")
    print(f"| local vs global | full frame local vs full frame global | "
          f"{diff_stats(outs['local'], outs['global'])} | - |")
    g = outs["global"]
    print(f"(full-frame output for scale: std {float(g.std()):.2e}, range {float(g.min()):.3f}..{float(g.max()):.3f})")


def section_precision(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model, _ = build(args.model)
    x = pixel4_crop(args.prec_size, args.prec_size)
    print(f"\n## precision: {args.model} (random init), Pixel 4 scene 002 central "
          f"{args.prec_size}x{args.prec_size} crop, one tile, CPU")
    print("| precision | time s | PSNR vs fp32 dB | max abs diff |")
    print("|---|---|---|---|")
    ref = None
    for prec in ("fp32", "bf16"):
        t0 = time.perf_counter()
        out = run_tiled(model, x, tile=0, overlap=0, multiple_of=16, device="cpu", precision=prec)
        dt = time.perf_counter() - t0
        if ref is None:
            ref = out
            print(f"| {prec} | {dt:.1f} | (reference) | 0 |", flush=True)
        else:
            mse = float(((out - ref) ** 2).mean())
            print(f"| {prec} | {dt:.1f} | {10 * math.log10(1 / mse):.1f} | {float((out - ref).abs().max()):.2e} |",
                  flush=True)
    print("| fp16 | - | refused on CPU (CUDA only) | - |")


# --------------------------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="memory,tiles,pooling,precision")
    p.add_argument("--nets", default="standin,bambnet_deblur", help="comma list for the memory section")
    p.add_argument("--model", default="bambnet_deblur", help="network of the tiles/pooling/precision sections")
    p.add_argument("--megapixels", default="2,8,24")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE)
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    p.add_argument("--max-tiles", type=int, default=2, help="tiles per run for non-stand-in nets (0 = all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tiles", default="256,384,512,768", help="tile sizes of the sweep")
    p.add_argument("--erf-size", type=int, default=256)
    p.add_argument("--crop", default="768x1280", help="HxW of the real-content crop")
    p.add_argument("--pool-tile", type=int, default=DEFAULT_TILE)
    p.add_argument("--pool-overlap", type=int, default=DEFAULT_OVERLAP)
    p.add_argument("--pool-window", type=int, default=512, help="local pooling window (BaMBNet trains on 512 px patches)")
    p.add_argument("--prec-size", type=int, default=512)
    p.add_argument("--channels-last", action="store_true")
    # child-process options
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--net", default="standin", help=argparse.SUPPRESS)
    p.add_argument("--h", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--w", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    a.nets = [n for n in a.nets.split(",") if n]
    a.megapixels = [int(v) for v in a.megapixels.split(",")]
    a.tiles = [int(v) for v in a.tiles.split(",")]
    return a


ARGS: argparse.Namespace


def main() -> None:
    global ARGS
    ARGS = parse()
    if ARGS.child == "memory":
        child_memory(ARGS)
        return
    print(f"# bench_tiling  torch {torch.__version__}  cpu: {torch.backends.cpu.get_cpu_capability()}  "
          f"threads {ARGS.threads}  load avg {os.getloadavg()[0]:.1f}")
    sections = ARGS.sections.split(",")
    if "memory" in sections:
        section_memory(ARGS)
    if "tiles" in sections:
        section_tiles(ARGS)
    if "pooling" in sections:
        section_pooling(ARGS)
    if "precision" in sections:
        section_precision(ARGS)


if __name__ == "__main__":
    main()
