"""Training of the learned stage-1 fusion (:mod:`dpcli.zeroshot.fusion_net`) on synthetic DP scenes only.

Three steps, each a subcommand of ``python -m dpcli.zeroshot.fusion_train``:

``cache``: render scenes with :mod:`dpcli.synth` (domain ``phone``: phone preset, grey, linear
    16-bit; ``dslr``: DSLR preset, colour, 8-bit sRGB linearised like ``--srgb``), solve stage 1 on
    each exactly as the pipeline does (:func:`dpcli.zeroshot.kernels.prepare_kernels` +
    :func:`dpcli.zeroshot.layers.solve_layers`, default :class:`ZeroShotConfig`), and store the
    fusion features (:func:`dpcli.zeroshot.fusion_features.fusion_features`, the function inference
    uses), the layers and the exact all-in-focus GT. Scene ``i`` is one of three kinds (i mod 3):
    rendered with RDPD kernels and solved blind; rendered with a measured calibration patch's
    kernels (``--kernels`` folder) and solved blind; the same, solved with that patch's kernels
    (what ``--kernels`` calibration does).
``train``: Adam on L1 of the fused image vs the GT (divided by the scene's mean level), random
    crops, time budget, ``--resume`` from the run folder's checkpoint; writes ``fusion.safetensors``.
``val``: PSNR on cached validation scenes of the residual choice, the learned fusion and the
    GT-picked oracle (a layer per 15-px window), per kind.

Example (the shipped recipe is in dpcli/weights/README.md):
    python -m dpcli.zeroshot.fusion_train cache --domain phone --out /tmp/fz/pixel --first 0 --count 240
    python -m dpcli.zeroshot.fusion_train cache --domain phone --out /tmp/fz/pixel-val --first 100000 --count 30
    python -m dpcli.zeroshot.fusion_train train --cache /tmp/fz/pixel --val /tmp/fz/pixel-val \
        --run /tmp/fz/run1 --minutes 20
    python -m dpcli.zeroshot.fusion_train val --cache /tmp/fz/pixel-val --weights /tmp/fz/run1/fusion.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.domains import normalise_domain
from dpcli.zeroshot.fusion_features import fusion_features
from dpcli.zeroshot.fusion_net import FusionNet, FusionNetConfig, fuse_logits, load_fusion_net, save_fusion_net

KINDS = ("rdpd-blind", "measured-blind", "measured-calibrated")
SCENE_PRESETS = {  # per domain (dpcli.domains): how its synthetic scenes are rendered
    # phone: Pixel 4-like crops at native resolution (radii of the preset widened both ways)
    # radii up to the default stage-1 stack's largest layer (ZeroShotConfig.max_radius 17 px); run1's
    # cache (scenes 0-149) drew 2-13 px
    "phone": dict(camera="phone", grey=True, output="linear16", radius=(2.0, 18.0)),
    # DSLR pairs at about the Canon dev scenes' 840 px width (DPDD radii halved), 8-bit sRGB
    "dslr": dict(camera="dslr", grey=False, output="srgb8", radius=(4.0, 18.0)),
}


def render_example(domain: str, index: int, size: int, seed: int = 7, kernels: str | None = None,
                   photos: tuple[str, ...] = (), fullframe_prob: float = 0.0) -> dict:
    """Render synthetic scene ``index`` of ``domain`` and solve stage 1 on it as the pipeline does.

    Returns a dict of tensors: ``left``, ``right`` (C, H, W) linear views, ``gt`` (C, H, W)
    linear all-in-focus, ``latent`` / ``blur_left`` / ``blur_right`` (L, C, H, W), ``radii`` (L,),
    and ``kind``. ``photos`` / ``fullframe_prob``: natural photographs as textures and whole-photo
    scenes (:class:`dpcli.synth.SceneConfig`), instead of the bundled textures alone."""
    from dpcli.optics.color import srgb_to_linear
    from dpcli.synth import SceneConfig, render_scene, scene_rng
    from dpcli.zeroshot import ZeroShotConfig
    from dpcli.zeroshot.kernels import prepare_kernels
    from dpcli.zeroshot.layers import solve_layers

    d = SCENE_PRESETS[normalise_domain(domain)]
    kind = KINDS[index % 3] if kernels else KINDS[0]
    rng = scene_rng(seed + 1000, index)
    radius = float(rng.uniform(*d["radius"]))
    cfg_s = SceneConfig(height=size, width=size, camera=d["camera"], scale_radii=False, max_radius=radius,
                        grey=d["grey"], output=d["output"], kernels=None if kind == KINDS[0] else kernels,
                        photos=tuple(photos), fullframe_prob=fullframe_prob if photos else 0.0)
    sc = render_scene(seed, cfg_s, index)
    if d["output"].startswith("srgb"):
        left, right = srgb_to_linear(sc.left), srgb_to_linear(sc.right)
    else:
        left, right = sc.left, sc.right
    gt = sc.linear["sharp"]
    cfg = ZeroShotConfig(grid=(1, 1))
    measured = None
    if kind == KINDS[2]:
        ml, mr = _kernel_pair(kernels)
        p = sc.meta["kernel_patch"]
        measured = (ml[p : p + 1].numpy(), mr[p : p + 1].numpy())
    h, w = left.shape[-2:]
    setup = prepare_kernels(cfg, h, w, measured, (0, h, 0, w) if measured is not None else None)
    stack = solve_layers(left, right, setup, cfg)
    return dict(left=left, right=right, gt=gt, latent=stack.latent, blur_left=stack.blur_left,
                blur_right=stack.blur_right, radii=stack.radii, kind=kind, max_radius=radius)


def _kernel_pair(folder: str):
    from dpcli.optics import load_measured_kernels, kernel_centroid

    fl, fr = load_measured_kernels(Path(folder) / "blur_kernels_left.npy", Path(folder) / "blur_kernels_right.npy")
    gap = float((kernel_centroid(fl)[:, 0] - kernel_centroid(fr)[:, 0]).mean())
    return (fl, fr) if gap > 0 else (fr, fl)  # our orientation: the left kernel's centroid at +x


def cache_example(ex: dict) -> dict:
    """What training keeps of one example: features (the inference function), layers, GT."""
    feats = fusion_features(ex["left"], ex["right"], ex["latent"], ex["blur_left"], ex["blur_right"], ex["radii"])
    m = float(((ex["left"] + ex["right"]) / 2).mean().clamp_min(1e-6))
    return dict(layer=feats.layer.half(), shared=feats.shared.half(), base_logits=feats.base_logits.half(),
                scale=feats.scale, latent=ex["latent"].half(), gt=ex["gt"].float(), level=m, kind=ex["kind"],
                max_radius=ex["max_radius"])


def cmd_cache(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    for i in range(args.first, args.first + args.count):
        path = out / f"{i:06d}.pt"
        if path.exists():
            continue
        item = cache_example(render_example(args.domain, i, args.size, args.seed, args.kernels,
                                            tuple(args.photos), args.fullframe))
        tmp = path.with_suffix(".tmp")
        torch.save(item, tmp)
        tmp.replace(path)
        print(f"{path.name} {item['kind']} r={item['max_radius']:.1f} {time.perf_counter() - start:.0f}s", flush=True)


def _load_dir(folder: str | Path) -> list[dict]:
    return [torch.load(p, weights_only=False) for p in sorted(Path(folder).glob("*.pt"))]


def _crop(item: dict, size: int, gen: torch.Generator, flip: bool) -> tuple[torch.Tensor, ...]:
    s = item["scale"]
    h, w = item["gt"].shape[-2:]
    cs = min(size, h - h % s, w - w % s)
    y = int(torch.randint(0, (h - cs) // s + 1, (1,), generator=gen)) * s
    x = int(torch.randint(0, (w - cs) // s + 1, (1,), generator=gen)) * s
    ly, lx, lc = y // s, x // s, cs // s
    low = (..., slice(ly, ly + lc), slice(lx, lx + lc))
    full = (..., slice(y, y + cs), slice(x, x + cs))
    parts = (item["layer"][low].float(), item["shared"][low].float(), item["base_logits"][full].float(),
             item["latent"][full].float(), item["gt"][full])
    if flip:  # vertical flips keep every feature's meaning (horizontal ones would swap L and R)
        parts = tuple(p.flip(-2) for p in parts)
    return parts


def fused_image(net: FusionNet, layer, shared, base_logits, latent, scale: int) -> torch.Tensor:
    """(B, C, H, W) fused image of a batch: (B, L, K, h, w), (B, S, h, w), (B, L, H, W), (B, L, C, H, W)."""
    weights = fuse_logits(net, layer, shared, base_logits, scale)
    return (weights.unsqueeze(2) * latent).sum(1)


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (x.clamp(0, 1) - y).square().mean().clamp_min(1e-12)))


def evaluate(net: FusionNet | None, items: list[dict], border: int = 8) -> dict[str, dict[str, float]]:
    """Mean PSNR (image clipped to [0, 1], ``border`` px left out) per kind and overall of the
    residual choice, ``net`` and the GT-picked oracle (a layer per 15-px box)."""
    from dpcli.optics.windows import box_mean

    rows: dict[str, list[tuple[float, ...]]] = {}
    core = (..., slice(border, -border), slice(border, -border))
    with torch.no_grad():
        for it in items:
            latent = it["latent"].float()
            base = torch.softmax(it["base_logits"].float(), 0)
            res = (base.unsqueeze(1) * latent).sum(0)
            vals = [_psnr(res[core], it["gt"][core])]
            if net is not None:
                net.eval()
                img = fused_image(net, it["layer"][None].float(), it["shared"][None].float(),
                                  it["base_logits"][None].float(), latent[None], it["scale"])[0]
                vals.append(_psnr(img[core], it["gt"][core]))
            err = box_mean((latent - it["gt"]).square().mean(1), 7)
            pick = F.one_hot(err.argmin(0), latent.shape[0]).permute(2, 0, 1).float()
            vals.append(_psnr((pick.unsqueeze(1) * latent).sum(0)[core], it["gt"][core]))
            rows.setdefault(it["kind"], []).append(tuple(vals))
            rows.setdefault("all", []).append(tuple(vals))
    names = ["residual"] + (["learned"] if net is not None else []) + ["oracle"]
    return {k: {n: float(np.mean([v[j] for v in vs])) for j, n in enumerate(names)} | {"n": len(vs)}
            for k, vs in rows.items()}


def cmd_train(args) -> None:
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    items = _load_dir(args.cache)
    val = _load_dir(args.val) if args.val else []
    ckpt = run / "checkpoint.pt"
    parse = lambda text: tuple(int(v) for v in text.split(",")) if text is not None else None  # noqa: E731
    cfg = FusionNetConfig(width=args.width, layer_channels=parse(args.layer_channels),
                          shared_channels=() if args.shared_channels == "" else parse(args.shared_channels))
    net = load_fusion_net(args.init) if args.init else FusionNet(cfg)  # --init: fine-tune a trained net
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    state = dict(step=0, seconds=0.0, log=[])
    if args.resume and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        print(f"resumed at step {state['step']} ({state['seconds']:.0f} s trained)", flush=True)
    gen = torch.Generator().manual_seed(args.seed + state["step"])
    budget = args.minutes * 60
    t0 = time.perf_counter() - state["seconds"]
    last_save = time.perf_counter()
    print(f"{len(items)} training scenes, {len(val)} validation; budget {budget:.0f} s", flush=True)
    if val and state["step"] == 0:
        print("val at start:", json.dumps(evaluate(net, val)["all"]), flush=True)
    while time.perf_counter() - t0 < budget:
        frac = (time.perf_counter() - t0) / budget
        for g in opt.param_groups:  # cosine decay over the time budget
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        net.train()
        idx = torch.randint(0, len(items), (args.batch,), generator=gen).tolist()
        flips = torch.rand(args.batch, generator=gen) < 0.5
        parts = [_crop(items[i], args.crop, gen, bool(f)) for i, f in zip(idx, flips)]
        layer, shared, base, latent, gt = (torch.stack(p) for p in zip(*parts))
        level = torch.tensor([items[i]["level"] for i in idx]).view(-1, 1, 1, 1)
        img = fused_image(net, layer, shared, base, latent, items[0]["scale"])
        loss = ((img - gt).abs() / level).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["log"].append(loss.item())
        if state["step"] % 50 == 0:
            print(f"step {state['step']} loss {np.mean(state['log'][-50:]):.5f} "
                  f"t {time.perf_counter() - t0:.0f}s", flush=True)
        if time.perf_counter() - last_save > 120:
            state["seconds"] = time.perf_counter() - t0
            _save_ckpt(ckpt, net, opt, state)
            last_save = time.perf_counter()
    state["seconds"] = time.perf_counter() - t0
    _save_ckpt(ckpt, net, opt, state)
    meta = dict(init=args.init or "", steps=state["step"], train_seconds=round(state["seconds"]), cache=str(args.cache),
                scenes=len(items), crop=args.crop, batch=args.batch, lr=args.lr, seed=args.seed)
    if val:
        meta["val"] = evaluate(net, val)
        print("val:", json.dumps(meta["val"]), flush=True)
    save_fusion_net(net, run / "fusion.safetensors", meta)
    print(f"wrote {run / 'fusion.safetensors'} after {state['step']} steps, {state['seconds']:.0f} s", flush=True)


def _save_ckpt(path: Path, net, opt, state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(dict(net=net.state_dict(), opt=opt.state_dict(), state=state), tmp)
    tmp.replace(path)


def cmd_val(args) -> None:
    torch.set_num_threads(args.threads)
    net = load_fusion_net(args.weights) if args.weights else None
    for kind, row in evaluate(net, _load_dir(args.cache)).items():
        print(f"{kind:>20} " + " ".join(f"{k} {v:.3f}" if k != "n" else f"n {v}" for k, v in row.items()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m dpcli.zeroshot.fusion_train", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache", help="render synthetic scenes, solve stage 1, store features + GT")
    c.add_argument("--domain", type=normalise_domain, choices=sorted(SCENE_PRESETS), default="phone",
                   help="phone (Pixel 4-like grey raw) | dslr (colour sRGB); pixel = phone")
    c.add_argument("--out", required=True)
    c.add_argument("--first", type=int, default=0)
    c.add_argument("--count", type=int, default=240)
    c.add_argument("--size", type=int, default=384)
    c.add_argument("--seed", type=int, default=7)
    c.add_argument("--kernels", default=None, help="folder with blur_kernels_{left,right}.npy (measured kinds)")
    c.add_argument("--photos", action="append", default=[],
                   help="folder of natural photos for textures, repeatable; 'debian' = the Debian wallpapers")
    c.add_argument("--fullframe", type=float, default=0.4,
                   help="with --photos: share of whole-photo scenes with a segmentation pseudo-depth")
    t = sub.add_parser("train", help="train the fusion net on a cache folder")
    t.add_argument("--cache", required=True)
    t.add_argument("--val", default=None)
    t.add_argument("--run", required=True)
    t.add_argument("--minutes", type=float, default=20.0)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init", default=None, help="start from these fusion weights (fine-tuning)")
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--crop", type=int, default=192)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--width", type=int, default=24)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layer-channels", default=None,
                   help="comma-separated feature channels the net reads (default all)")
    t.add_argument("--shared-channels", default=None, help="same for the shared features ('' = none)")
    v = sub.add_parser("val", help="PSNR of residual / learned / oracle on a cache folder")
    v.add_argument("--cache", required=True)
    v.add_argument("--weights", default=None)
    for p in (c, t, v):
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    {"cache": cmd_cache, "train": cmd_train, "val": cmd_val}[args.cmd](args)


if __name__ == "__main__":
    main()
