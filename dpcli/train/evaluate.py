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

from dpcli.domains import DOMAIN_SCENES
from dpcli.metrics.image import spares_sharp
from dpcli.train.data import SynthDataset, fixed_batches
from dpcli.train.losses import psnr_batch

# (left, right[, combined]) (1, 3, H, W) -> AiF (1, 3, H, W); combined: the single photo a camera records
# beside the views (a single-image network's input, as `run` gets it), None = the views' mean
Runner = Callable[..., Tensor]


def pair_runner(net: nn.Module, task: str, tile: int | None = 256, overlap: int | None = 32,
                device: str | torch.device = "cpu", arch: str | None = None, space: str = "",
                post: tuple[str, ...] = ()) -> Runner:
    """Inference of a DP-pair network (``deblur_pair``) or a single-image one (``deblur_single``, fed
    the combined capture where the data has one, else the views' mean) through the engine
    ``dpdeblur run`` uses (:class:`dpcli.engine.Deblurrer`: tiles on ``device``, grey expanded to
    RGB), then the post steps ``post`` as a weights entry lists them (``["keep_mean:32",
    "correction_gate"]``, :mod:`dpcli.methods.post`), with views encoded in ``space``. ``tile`` None =
    the memory plan of ``run``; ``arch``: the registry name (default: the network's ``arch`` attribute)."""
    from dpcli.engine import Deblurrer
    from dpcli.methods.post import post_for
    from dpcli.models.loading import LoadedModel
    from dpcli.models.registry import model_info

    arch = arch or getattr(net, "arch", None)
    if arch is None:
        raise ValueError("pair_runner needs the network's registry name (arch=...)")
    loaded = LoadedModel(net.float().eval(), arch, model_info(arch), post=tuple(post), space=space)
    session = Deblurrer(loaded, device=str(device), tile=tile, tile_overlap=overlap)
    steps = post_for(session)

    @torch.no_grad()
    def run(left: Tensor, right: Tensor, combined: Tensor | None = None) -> Tensor:
        if task == "deblur_pair":
            return session.deblur_pair(left, right, post=steps)
        return session.deblur_image((left + right) / 2 if combined is None else combined, post=steps)

    return run


@torch.no_grad()
def synthetic_scores(run: Runner, count: int = 16, size: int = 192, camera: str = "phone", grey: bool = True,
                     seed: int = 2024) -> dict[str, float]:
    """Mean PSNR on fixed synthetic scenes (never seen in training: a separate seed stream)."""
    ds = SynthDataset(length=count, size=size, camera=camera, grey=grey)
    ds.augment_cfg.hflip = ds.augment_cfg.vflip = False
    pred, base = [], []
    for batch in fixed_batches(ds, count, 1, seed=seed):
        out = run(batch["left"], batch["right"], batch["combined"])
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


@torch.no_grad()
def canon_scores(run: Runner, canon_dir: Path) -> dict[str, Any]:
    """Canon DPDD-GIF scenes (8-bit palette, sRGB): PSNR/SSIM/MAE with the label corner masked. Which
    view is left is decided as ``run`` decides it (:func:`dpcli.pipeline.decide_orientation`: the
    data prior, never the GT)."""
    from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene, score_canon
    from dpcli.pipeline import Source, Views, decide_orientation

    rows, per_scene = [], {}
    for sid in list_canon_scenes(canon_dir):
        sc = load_canon_scene(canon_dir, sid)
        a_is_left = not decide_orientation(Views.from_arrays(sc.view_a, sc.view_b), True, Source(srgb=True)).swapped
        a, b = torch.from_numpy(sc.view_a)[None], torch.from_numpy(sc.view_b)[None]
        left, right = (a, b) if a_is_left else (b, a)
        # a single-image network gets the combined capture, as `run` does on a Canon photo (its
        # baseline too); a pair network the views
        out = run(left, right, torch.from_numpy(sc.combined)[None])[0].clamp(0, 1).numpy()
        pred, base = score_canon(out, sc), score_canon(sc.combined, sc)
        per_scene[sid] = {"pred": pred, "input": base, "view_a_is_left": a_is_left}
        rows.append((pred, base))
    mean = lambda key, i: float(np.mean([r[i][key] for r in rows]))  # noqa: E731
    return {"canon_psnr": mean("psnr", 0), "canon_ssim": mean("ssim", 0), "canon_psnr_input": mean("psnr", 1),
            "canon_ssim_input": mean("ssim", 1), "canon_scenes": per_scene}


@torch.no_grad()
def sharp_scores(run: Runner, shared: Path, domain: str) -> dict[str, Any]:
    """The harm figure: sharp photos through ``run``, PSNR of the output against the input itself
    (a deblurrer should give a sharp photo back unchanged). dslr: the Canon dev ground truths as L=R
    pairs (a single-image runner gets them as photos) and the bundled ``examples/single/scene_c``
    (nearly sharp); phone: the Pixel 4 dev ground-truth crops as L=R pairs."""
    from dpcli.metrics.image import psnr

    images: dict[str, np.ndarray] = {}
    if domain == "dslr":
        from dpcli.io.images import read_image
        from dpcli.metrics.protocols import list_canon_scenes, load_canon_scene

        canon = shared / "data" / "canon-dpdd-gif"
        for sid in list_canon_scenes(canon):
            images[f"canon_{sid}"] = load_canon_scene(canon, sid).gt
        example = Path(__file__).resolve().parents[2] / "examples" / "single" / "scene_c.png"
        if example.is_file():
            images["scene_c"] = read_image(example).data
    else:
        from dpcli.metrics.protocols import list_pixel4_scenes, load_pixel4_scene

        pixel4 = shared / "data" / "pixel4"
        for sid in list_pixel4_scenes(pixel4):
            images[f"pixel4_{sid}"] = np.clip(load_pixel4_scene(pixel4, sid).gt, 0, 1)
    per_image = {}
    for name, img in images.items():
        x = torch.from_numpy(np.ascontiguousarray(img, np.float32))
        t = x[None].expand(-1, 3, -1, -1)  # grey planes as the networks take them (RGB stays as it is)
        out = run(t, t)[0].clamp(0, 1)
        per_image[name] = min(IDENTICAL_PSNR_DB, psnr(out.mean(0, keepdim=True) if x.shape[0] == 1 else out, x))
    if not per_image:
        return {}
    return {"sharp_psnr": float(np.mean(list(per_image.values()))), "sharp_psnr_min": float(min(per_image.values())),
            "sharp_images": per_image}


def load_candidate(path: Path, arch: str | None = None) -> tuple[nn.Module, str, str]:
    """(network, arch, task) from our checkpoint.pt (first network) or an exported safetensors."""
    from dpcli.models.loading import create_model
    from dpcli.models.registry import model_info

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
             device: str | torch.device = "cpu", domains: tuple[str, ...] = ("phone", "dslr"),
             post: tuple[str, ...] = ()) -> dict[str, Any]:
    """Scores of one candidate with the post steps ``post`` (:func:`pair_runner`): the synthetic
    validation set, then the real dev scenes of ``domains`` (phone: Pixel 4, dslr: Canon) found under
    ``shared/data``, and the harm figure on sharp photos of the first of ``domains`` (:func:`sharp_scores`)."""
    net, arch, task = load_candidate(path, arch)
    if task == "coc":
        run = coc_runner(net, tile=tile, device=device)
        scores = {"arch": arch, **synthetic_defocus_scores(run, synth_count, camera=camera, grey=grey)}
        if shared is not None and (shared / "data" / "pixel4").is_dir():
            scores |= pixel4_defocus_scores(run, shared / "data" / "pixel4")
        return scores
    runners = {d: pair_runner(net, task, tile=tile, device=device, arch=arch, post=post,
                              space="srgb" if d == "dslr" else "linear") for d in DOMAIN_SCENES}
    synth_domain = "phone" if grey else "dslr"
    scores: dict[str, Any] = {"arch": arch, **synthetic_scores(runners[synth_domain], synth_count, camera=camera,
                                                              grey=grey)}
    if shared is not None:
        if "phone" in domains and (shared / "data" / "pixel4").is_dir():
            scores |= pixel4_scores(runners["phone"], shared / "data" / "pixel4")
        if "dslr" in domains and (shared / "data" / "canon-dpdd-gif").is_dir():
            scores |= canon_scores(runners["dslr"], shared / "data" / "canon-dpdd-gif")
        scores |= sharp_scores(runners[domains[0]], shared, domains[0])
    return scores


GATE_STEPS = ("blur_gate", "focus_part")  # the post steps a BlurNet drives (dpcli.methods.post)


def _without_gates(post: tuple[str, ...]) -> tuple[str, ...]:
    """A post list without the steps a BlurNet drives."""
    return tuple(s for s in post if s.partition(":")[0] not in GATE_STEPS)


def gate_scores(blur: Path, target: str, shared: Path, domain: str = "dslr", tile: int = 256,
                device: str | torch.device = "cpu", step: str = "blur_gate") -> dict[str, Any]:
    """A BlurNet candidate judged by what it does as the ``step`` (``blur_gate``: per pixel;
    ``focus_part``: per photo) of the shipped single-image weights ``target`` (``arch.tag``): their
    dev-scene and sharp-photo scores with it (``gated``) and without (``ungated``), through the
    engine ``run`` uses. The candidate is scored in the fp16 form it would ship in."""
    import tempfile

    from dpcli.models.loading import create_model
    from dpcli.models.registry import pretrained_cfg
    from dpcli.train.export import save_fp16_safetensors

    net, arch, task = load_candidate(blur)
    if task != "blur":
        raise ValueError(f"{blur} is a {task} network, not a blur gate")
    entry = pretrained_cfg(*target.split(".", 1)).cfg
    gen = create_model(target)
    key = DOMAIN_SCENES[domain]
    folder = shared / "data" / ("canon-dpdd-gif" if domain == "dslr" else "pixel4")
    out: dict[str, Any] = {"arch": arch, "target": target, "step": step}
    with tempfile.TemporaryDirectory() as tmp:
        path = save_fp16_safetensors(net, arch, Path(tmp) / f"{arch}.candidate.safetensors")
        for name, gate in (("ungated", ""), ("gated", str(path))):
            run = pair_runner(gen, "deblur_single", tile=tile, device=device, arch=entry.arch, space=entry.space,
                              post=_without_gates(entry.post) + ((f"{step}:{gate}",) if gate else ()))  # the gate last
            scores = canon_scores(run, folder) if key == "canon" else pixel4_scores(run, folder)
            out[name] = scores | sharp_scores(run, shared, domain)
    return out


def ship_blur_gate(path: Path, scores: dict[str, Any], tag: str, training_data: str, domain: str = "dslr",
                   notes: str = "") -> str:
    """Ship a BlurNet candidate as ARCH.TAG and make it the ``scores["step"]`` of ``scores["target"]``, only
    if the gated weights pass the shipping rule of ``domain`` (harm criterion included) and the gate
    costs no blurred gain (the gated mean PSNR is not below the ungated one)."""
    key = DOMAIN_SCENES[domain]
    ok, why = shipping_verdict(scores["gated"], domain)
    gated, ungated = scores["gated"][f"{key}_psnr"], scores["ungated"][f"{key}_psnr"]
    why += f"; ungated {ungated:.2f} dB"
    if not ok or gated < ungated:
        return f"not shipped: {why}"
    from dpcli.train.export import export_weights, update_entry

    net, arch, _ = load_candidate(path)
    state = torch.load(path, map_location="cpu", weights_only=False) if path.suffix != ".safetensors" else {}
    flat = {k: float(v) for k, v in scores["gated"].items() if isinstance(v, (int, float))}
    entry = export_weights(net, arch, tag, metrics={f"gated_{k}": v for k, v in flat.items()},
                           recipe={"checkpoint_step": state.get("step"), "config": state.get("config", {})},
                           training_data=training_data,
                           notes=f"{scores['step']} of {scores['target']}. {notes}".strip(),
                           domain=domain, space="srgb")
    from dpcli.models.registry import pretrained_cfg

    post = _without_gates(pretrained_cfg(*scores["target"].split(".", 1)).cfg.post)
    update_entry(scores["target"], post=post + (f"{scores['step']}:{entry['name']}",), metrics=flat)
    return f"shipped {entry['name']} as the {scores['step']} of {scores['target']} ({why})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="examples: python -m dpcli.train.evaluate runs/x/checkpoint.pt --shared ../shared --export v1  |  "
               "a single-image net gated by a second one, as shipped for colour photos: python -m "
               "dpcli.train.evaluate dpcli/weights/defocusgan_generator_small.dslr-synth.safetensors --shared "
               "../shared --synth-camera dslr --colour --keep-mean 32 --correction-gate --endorse "
               "defocusgan_generator_small.dslr-soft --domain dslr  |  a BlurNet as the in-focus check of the "
               "single-photo default: python -m dpcli.train.evaluate runs/blur/checkpoint.pt --gate-for "
               "defocusgan_generator_small.dslr-consensus --gate-step focus_part --shared ../shared --domain dslr")
    parser.add_argument("weights", type=Path, help="checkpoint.pt of a run, or exported .safetensors")
    parser.add_argument("--shared", type=Path, default=None, help="../shared (real data)")
    parser.add_argument("--synth-count", type=int, default=16)
    parser.add_argument("--synth-camera", default="phone")
    parser.add_argument("--colour", action="store_true", help="colour synthetic scenes (default grey)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where the network runs: cpu | cuda | cuda:N")
    parser.add_argument("--arch", default=None, help="registry name when the checkpoint does not record it")
    parser.add_argument("--post", action="append", default=[], metavar="STEP",
                        help="a post step after the network, as a weights entry lists them (repeat, in order: "
                             "--post keep_mean:32 --post correction_gate; dpcli.methods.post); or the flags below")
    parser.add_argument("--keep-mean", type=float, default=0.0, metavar="PX",
                        help="post step keep_mean:PX: restore the input's local mean at this scale (px) after "
                             "the network, as `dpdeblur run` does for weights exported with it (0 = off)")
    parser.add_argument("--focus-gate", action="store_true",
                        help="post step focus_gate, for pairs: keep the correction only where the pair is out of focus "
                             "(dpcli.optics.focus_gate), as `dpdeblur run` does for weights exported with it")
    parser.add_argument("--correction-gate", action="store_true",
                        help="post step correction_gate, for single images: keep the correction only where it "
                             "restores detail the input lacks (dpcli.optics.correction_gate), as `dpdeblur run` "
                             "does for weights exported with it")
    parser.add_argument("--endorse", default="", metavar="ARCH.TAG",
                        help="post step endorse:ARCH.TAG, for single images: keep the correction only where these "
                             "second single-image weights make it too (dpcli.optics.endorsement_gate), as "
                             "`dpdeblur run` does for weights exported with it")
    parser.add_argument("--gate-for", default=None, metavar="ARCH.TAG",
                        help="a BlurNet candidate: score it as the blur gate of these shipped single-image weights "
                             "(with --export: ship it as their gate if the gated weights pass the rule)")
    parser.add_argument("--gate-step", choices=GATE_STEPS, default="blur_gate",
                        help="with --gate-for: the BlurNet as a per-pixel gate (blur_gate) or as the check that a "
                             "photo has a part in focus (focus_part; dpcli.methods.post)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--export", default=None, metavar="TAG",
                        help="ship as ARCH.TAG (fp16 + manifest) IF it passes the shipping rule on the real dev "
                             "scenes of --domain")
    parser.add_argument("--domain", choices=sorted(DOMAIN_SCENES), default=None,
                        help="whose dev scenes decide --export: phone (Pixel 4) or dslr (Canon); default: dslr for "
                             "--synth-camera dslr, else phone")
    parser.add_argument("--training-data", default="synthetic (dpcli.synth)")
    parser.add_argument("--notes", default="", help="free text for the manifest entry (with --export)")
    args = parser.parse_args()
    from dpcli.models.registry import post_from_flags

    torch.set_num_threads(args.threads)
    domain = args.domain or ("dslr" if args.synth_camera == "dslr" else "phone")
    if args.gate_for:
        if args.shared is None:
            parser.error("--gate-for needs --shared (the dev scenes decide)")
        scores = gate_scores(args.weights, args.gate_for, args.shared, domain, args.tile, args.device,
                             args.gate_step)
        text = json.dumps(scores, indent=2)
        if args.json:
            args.json.write_text(text)
        print(text)
        if args.export:
            print(ship_blur_gate(args.weights, scores, args.export, args.training_data, domain, args.notes))
        return
    flags = post_from_flags(keep_mean_px=args.keep_mean, focus_gate=args.focus_gate, endorse=args.endorse,
                            correction_gate=args.correction_gate)
    if args.post and flags:
        parser.error("give the post steps with --post or with the flags (--keep-mean ...), not both")
    post = tuple(args.post) or flags
    scores = evaluate(args.weights, args.shared, args.synth_count, args.tile, not args.colour, args.synth_camera,
                      args.arch, args.device, (domain,) + tuple(d for d in DOMAIN_SCENES if d != domain), post)
    text = json.dumps(scores, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    if args.export:
        print(ship_if_better(args.weights, scores, args.export, args.training_data, args.arch, args.notes, domain,
                             post))


# the largest loss a single dev scene may show in a shipped candidate (dB): none ("never worse")
MAX_SCENE_LOSS_DB = 0.0
IDENTICAL_PSNR_DB = 99.0  # an output identical to its input (infinite PSNR) is recorded as this


def shipping_verdict(scores: dict[str, Any], domain: str = "phone", min_gain_db: float = 0.0,
                     min_spearman: float = 0.6) -> tuple[bool, str]:
    """The shipping rule, on the real dev scenes of ``domain`` (phone: Pixel 4; dslr: Canon): mean
    PSNR above the input's by more than ``min_gain_db``, mean SSIM not lower, no scene more than
    ``MAX_SCENE_LOSS_DB`` below its input, and, where the harm figure was measured, sharp photos back
    unchanged to ``SHARP_PSNR_MEAN_DB`` mean and ``SHARP_PSNR_EACH_DB`` each (:func:`dpcli.metrics.spares_sharp`;
    the harm figure is :func:`sharp_scores`). A defocus-map network has no "input" to beat: it must beat
    the best constant map on synthetic data and rank the real Pixel 4 depths with a mean Spearman of
    at least ``min_spearman``. Returns (ships, one line saying why)."""
    if "pixel4_defocus_spearman" in scores:
        rho, mae, const = (scores["pixel4_defocus_spearman"], scores["synth_defocus_mae_px"],
                           scores["synth_defocus_mae_px_constant"])
        ok = rho >= min_spearman and mae < const
        return ok, (f"Pixel 4 defocus Spearman {rho:.3f} (needs {min_spearman}), synthetic MAE {mae:.2f} px vs "
                    f"{const:.2f} for the best constant map")
    key = DOMAIN_SCENES[domain]
    if f"{key}_psnr" not in scores:
        return False, f"no {key} scores: give --shared, the folder that holds the {domain} dev scenes"
    psnr, base = scores[f"{key}_psnr"], scores[f"{key}_psnr_input"]
    ssim, ssim_base = scores[f"{key}_ssim"], scores[f"{key}_ssim_input"]
    worst = min(((s["pred"]["psnr"] - s["input"]["psnr"], sid) for sid, s in scores.get(f"{key}_scenes", {}).items()),
                default=(0.0, "-"))
    summary = (f"{key} PSNR {psnr:.2f} dB vs input {base:.2f} ({psnr - base:+.2f}), SSIM {ssim:.3f} vs {ssim_base:.3f}, "
               f"worst scene {worst[1]} {worst[0]:+.2f} dB")
    ok = psnr > base + min_gain_db and ssim >= ssim_base and worst[0] >= -MAX_SCENE_LOSS_DB
    if "sharp_psnr" in scores:
        summary += f", sharp photos back at {scores['sharp_psnr']:.1f} dB (worst {scores['sharp_psnr_min']:.1f})"
        ok = ok and spares_sharp(scores["sharp_psnr"], scores["sharp_psnr_min"])
    return ok, summary


def beats_input(scores: dict[str, Any], domain: str = "phone", min_gain_db: float = 0.0) -> bool:
    """True when ``scores`` pass :func:`shipping_verdict` for ``domain``."""
    return shipping_verdict(scores, domain, min_gain_db)[0]


def _shipped_entries(path: Path) -> list[str]:
    """Names of the shipped entries whose weights file ``path`` is (same sha256); none for a checkpoint."""
    from dpcli.models.registry import list_pretrained, sha256_file

    if Path(path).suffix != ".safetensors":
        return []
    sha = sha256_file(path)
    return [c.name for c in list_pretrained() if c.sha256 == sha]


def ship_if_better(path: Path, scores: dict[str, Any], tag: str, training_data: str, arch: str | None = None,
                   notes: str = "", domain: str = "phone", post: tuple[str, ...] = ()) -> str:
    """Export the candidate with every figure in its manifest entry, only if it passes the shipping
    rule of ``domain``; the entry records the domain, the input space it was trained for and the
    post steps it was scored with (``post``)."""
    ok, why = shipping_verdict(scores, domain)
    if not ok:
        return f"not shipped: {why}"
    from dpcli.train.export import alias_entry, export_weights, update_entry

    net, arch, _ = load_candidate(path, arch)
    metrics = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
    name, owners = f"{arch}.{tag}", _shipped_entries(path)
    if name in owners:  # the same weights with other post steps: the entry keeps its file and record
        update_entry(name, metrics=metrics, post=post)
        return f"updated {name}: same weights, post steps and figures as scored ({why})"
    if owners:  # a shipped file under a new name (other post steps): one file, two entries
        alias_entry(owners[0], name, metrics=metrics, notes=notes, training_data=training_data, post=post)
        return f"shipped {name}: the weights of {owners[0]}, post steps and figures as scored ({why})"
    state = torch.load(path, map_location="cpu", weights_only=False) if path.suffix != ".safetensors" else {}
    recipe = {"checkpoint_step": state.get("step"), "config": state.get("config", {})}
    if state.get("averaged_steps"):
        recipe["averaged_steps"] = state["averaged_steps"]
    space = "srgb" if domain == "dslr" else "linear"
    entry = export_weights(net, arch, tag, metrics=metrics, recipe=recipe, training_data=training_data, notes=notes,
                           domain=domain, space=space, post=post)
    return f"shipped {entry['name']} sha256 {entry['sha256']} ({why})"


if __name__ == "__main__":
    main()
