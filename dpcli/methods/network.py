"""Network methods: one per shipped weights tag (``arch.tag`` in dpcli/weights/manifest.json), and one
for a checkpoint the user gives (``--method bambnet|defocusgan --weights FILE``). A method runs the
network (:class:`dpcli.engine.Deblurrer`) and then the post steps its weights entry lists
(:mod:`dpcli.methods.post`)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from dpcli.errors import ModelError
from dpcli.methods.base import DOMAINS, Method, unknown_method

# manifest metric prefix of each domain's dev scenes (dpcli.train.evaluate writes these keys)
DOMAIN_METRIC = {"phone": "pixel4", "dslr": "canon"}
_TASKS = ("deblur_pair", "deblur_single")
# below this PSNR against the input's combined view, a "deblurred" image is not an image of the
# scene (e.g. BaMBNet's COC net, which shares every key of the deblurring net, outputs radii)
MIN_RESEMBLANCE_DB = 12.0
# --precision auto runs a network in bf16 (where the CPU has it) only if no dev scene, blurred or
# sharp, lost more than this against fp32 through `run` (measured.json "bf16", bench_dev.py bf16)
BF16_MAX_LOSS_DB = 0.02


def bf16_harmless(name: str) -> bool:
    """Whether shipped weights ``name`` lost at most :data:`BF16_MAX_LOSS_DB` on every dev scene in
    bf16 (``measured.json`` "bf16": domain -> {"worst_db", ...}, written by ``benchmarks/bench_dev.py
    bf16 --write``); False where it was not measured (user files included)."""
    from dpcli.methods.builtin import _measured

    record = _measured().get("bf16", {}).get(name, {})
    return bool(record) and all(float(r.get("worst_db", -1.0)) >= -BF16_MAX_LOSS_DB for r in record.values())


def _entries():
    from dpcli.models.registry import list_pretrained, model_info

    out = []
    for cfg in list_pretrained():
        try:
            task = model_info(cfg.arch).task
        except ModelError:
            continue
        if task in _TASKS:
            out.append((cfg, task))
    return out


def shipped_network_names() -> list[str]:
    """``arch.tag`` of every shipped deblurring weights file."""
    return [cfg.name for cfg, _ in _entries()]


def gains_from_metrics(metrics: dict[str, float], domains: tuple[str, ...]) -> dict[str, float]:
    """domain -> PSNR gain over the input recorded in a manifest entry; only when the shipping rule
    holds there (mean PSNR above the input, SSIM not lower; per-scene figures checked at export)."""
    out = {}
    for domain in domains:
        key = DOMAIN_METRIC[domain]
        psnr, base = metrics.get(f"{key}_psnr"), metrics.get(f"{key}_psnr_input")
        ssim, ssim_base = metrics.get(f"{key}_ssim"), metrics.get(f"{key}_ssim_input")
        if psnr is None or base is None:
            continue
        if ssim is not None and ssim_base is not None and ssim < ssim_base:
            continue
        out[domain] = float(psnr - base)
    return out


def sharp_spared(metrics: dict[str, float]) -> bool:
    """Whether a manifest entry's harm figure (``sharp_psnr``, ``sharp_psnr_min``: sharp photos through
    the weights against themselves) holds; True where it was not measured."""
    from dpcli.metrics.image import spares_sharp

    if "sharp_psnr" not in metrics or "sharp_psnr_min" not in metrics:
        return True
    return spares_sharp(metrics["sharp_psnr"], metrics["sharp_psnr_min"])


class NetworkMethod(Method):
    """A deblurring network behind the method interface (loads on first use, cached)."""

    def __init__(self, name: str, task: str, *, weights: str | Path | None = None, arch: str | None = None,
                 space: str = "srgb", domains: tuple[str, ...] = DOMAINS, measured: dict | None = None,
                 spares_sharp: bool = True, summary: str = "", user_weights: bool = False, device: str = "auto",
                 precision: str = "auto", tile: int | None = None, tile_overlap: int | None = None,
                 coc_weights: str | Path | None = None,
                 **_: Any) -> None:
        self.name, self.task, self.weights, self.arch = name, task, weights, arch
        self.needs_pair = task == "deblur_pair"
        self.space, self.domains, self.measured = space, tuple(domains), dict(measured or {})
        self.spares_sharp = spares_sharp
        self.summary, self.user_weights = summary, user_weights
        self.runtime = dict(device=device, precision=precision, tile=tile, tile_overlap=tile_overlap)
        self.coc_weights = coc_weights
        self.check_output = user_weights  # see check_resembles_input
        self.min_size = 16

    @functools.cached_property
    def precision(self) -> str:
        """The precision its network runs in: ``--precision auto`` made concrete once (bf16 where
        measured harmless and the CPU has it, :func:`bf16_harmless`; else fp32)."""
        from dpcli.device import resolve_precision

        return resolve_precision(self.runtime["precision"], self.runtime["device"],
                                 self.weights is None and bf16_harmless(self.name))

    def session(self):
        from dpcli.engine import load_session

        return load_session(self.name if self.weights is None else self.name.split(".")[0], self.task,
                            weights=self.weights, arch=self.arch, **dict(self.runtime, precision=self.precision))

    @property
    def weights_id(self) -> str:
        """What identifies the weights in output records: the tag, or the file's sha256."""
        if self.weights is None:
            return self.name
        from dpcli.models.registry import sha256_file

        return sha256_file(self.weights)

    def post(self):
        """The weights' post steps (:mod:`dpcli.methods.post`) as this method runs them."""
        from dpcli.methods.post import post_for

        return post_for(self.session())

    def _deblur(self, left, right, *, kernels, defocus, focus):
        session, post = self.session(), self.post()
        info: dict = {"weights": self.name if self.weights is None else str(self.weights),
                      "precision": session.precision}  # what --precision auto ran
        if kernels is not None:
            info["note"] = "calibration kernels not used by networks"
        import torch

        views = [left] if right is None else [left, right]
        declined, post = post.precheck([torch.from_numpy(np.ascontiguousarray(v))[None] for v in views])
        if declined:  # a post step that reads the input alone gives it back: the network need not run
            info["note"] = "; ".join(filter(None, [info.get("note"), f"returned unchanged: {declined}"]))
            image = np.clip(left if right is None else (left + right) / 2, 0, 1).astype(np.float32)
            reference = image
        elif self.needs_pair:
            image = np.asarray(session.deblur_pair(left, right, post=post))
            reference = (left + right) / 2
        else:
            image = np.asarray(session.deblur_image(left, post=post))
            reference = left
        if self.check_output and session.loaded.official and _coc_shares_keys(session.loaded.info.family):
            check_resembles_input(image, reference, self.weights)  # the authors' deblur and COC files share keys
        dmap = None
        if defocus:
            dmap = coc_map(left, right, self.runtime, info, weights=self.coc_weights, srgb=self.space == "srgb")
        return image, dmap, info


def _coc_shares_keys(family: str) -> bool:
    from dpcli.models.registry import get_family

    return get_family(family).coc_shares_keys


def check_resembles_input(image: np.ndarray, reference: np.ndarray, weights) -> None:
    """ModelError when a network's 'deblurred' image is nothing like its input (PSNR against the
    combined view below :data:`MIN_RESEMBLANCE_DB`): wrong weights, most often a COC net."""
    from dpcli.metrics.image import psnr

    ref = np.broadcast_to(reference, image.shape) if reference.shape != image.shape else reference
    score = psnr(np.clip(image, 0, 1)[None], np.clip(ref, 0, 1)[None])
    if score < MIN_RESEMBLANCE_DB:
        raise ModelError(f"the network's output does not resemble the input ({score:.1f} dB against the "
                         "views' mean): these weights look like a COC / defocus-map network (BaMBNet's COC "
                         "net has the deblurring net's keys): use them with --defocus-map --defocus-weights",
                         weights)


def coc_map(left, right, runtime: dict, info: dict, weights=None, model: str = "bambnet",
            srgb: bool = True) -> np.ndarray:
    """Signed radius map of a pair from a COC network (registered or ``weights``); without COC
    weights, the classical estimator (said in ``info['defocus_source']``)."""
    from dpcli.engine import load_session

    try:
        session = load_session(model, "coc", weights=weights, **runtime)
    except ModelError:
        if weights is not None:
            raise
        from dpcli.classical import estimate_defocus_classical

        info["defocus_source"] = "classical (no COC weights installed)"
        return estimate_defocus_classical(left, right, srgb=srgb)[0]
    info["defocus_source"] = f"{session.loaded.arch} ({session.loaded.source})"
    coc = np.asarray(session.estimate_coc(left, right))
    return coc[0] if coc.ndim == 3 else coc


def network_method(name: str, *, weights: str | Path | None = None, arch: str | None = None,
                   task: str | None = None, **runtime: Any) -> NetworkMethod:
    """A :class:`NetworkMethod` for a shipped ``arch.tag`` or, with ``weights``, for a file.

    With ``weights``, ``name`` is a family, an architecture or ``auto`` (the family the file's keys
    say). A file given to run is a deblurring net: where a family's deblurring and COC nets share
    every key (BaMBNet), the deblurring one is meant (the COC net goes with --defocus-map).
    """
    from dpcli.models.loading import resolve_arch
    from dpcli.models.registry import get_family, model_info

    if weights is None:
        entries = _entries()
        for cfg, cfg_task in entries:
            if cfg.name == name:
                domains = tuple(d for d in (cfg.domain or "").split(",") if d in DOMAINS) or DOMAINS
                space = cfg.space or "srgb"
                return NetworkMethod(cfg.name, cfg_task, space=space, domains=domains,
                                     measured=gains_from_metrics(cfg.metrics, domains),
                                     spares_sharp=sharp_spared(cfg.metrics), summary=cfg.training_data, **runtime)
        return _by_family(name, entries, task, runtime)
    try:
        family, default_arch = resolve_arch(name, task or "deblur_pair")
    except ModelError:
        raise unknown_method(name) from None
    if arch is None and default_arch is not None and name.split(".")[0] == default_arch:
        arch = default_arch  # an architecture named with --method
    if arch is None:
        arch = _file_arch(weights) or _deblur_arch(weights, family, task)
    if family is None:
        if arch is None:
            raise ModelError("these weights fit no known deblurring network (see `dpdeblur models` for the "
                             "families dpdeblur runs)", weights)
        family = model_info(arch).family
        name = family
    if task is None:
        task = "deblur_pair"
        if arch is not None:
            task = model_info(arch).task
        elif default_arch is not None and model_info(default_arch).task in _TASKS:
            task = model_info(default_arch).task
        elif "deblur_pair" not in get_family(family).defaults:
            task = "deblur_single"
    space, domains = _file_space(weights)
    return NetworkMethod(name, task, weights=weights, arch=arch, space=space, domains=domains,
                         summary=f"{family} from {Path(weights).name}", user_weights=True, **runtime)


def _by_family(name: str, entries, task: str | None, runtime: dict) -> NetworkMethod:
    """``--method bambnet`` (a family or architecture, no --weights): its shipped weights, if any."""
    from dpcli.models.loading import resolve_arch
    from dpcli.models.registry import weights_hint

    try:
        family, arch = resolve_arch(name, task or "deblur_pair")
    except ModelError:
        raise unknown_method(name) from None
    from dpcli.models.registry import model_info

    shipped = [cfg.name for cfg, t in entries if (task is None or t == task)
               and (cfg.arch == name or model_info(cfg.arch).family == name)]
    if not shipped:
        raise ModelError(f"no trained weights for {name} are installed: {weights_hint()}")
    if len(shipped) > 1:
        raise ModelError(f"--method {name}: several weights are installed ({', '.join(shipped)}); name one")
    return network_method(shipped[0], **runtime)


def _deblur_arch(weights, family: str | None, task: str | None = None) -> str | None:
    """The deblurring architecture whose keys and shapes a file fits (BaMBNet's COC net has the same
    keys: a file given to run is taken as the deblurring net, and its output checked)."""
    from dpcli.models.loading import detect_architectures, read_checkpoint
    from dpcli.models.registry import model_info

    sd, _ = read_checkpoint(weights)
    found = [a for a in detect_architectures(sd, family) if model_info(a).task in ((task,) if task else _TASKS)]
    return found[0] if found else None


def _file_arch(weights) -> str | None:
    """Our safetensors say their architecture; the authors' files do not (None)."""
    from dpcli.models.loading import read_checkpoint

    _, meta = read_checkpoint(weights)
    return meta.get("arch") or None


def _file_space(weights) -> tuple[str, tuple[str, ...]]:
    """(space, domains) of a checkpoint file: the authors' DPDD nets are sRGB colour; ours say so
    in their metadata ('linear' in the training data = phone raw planes)."""
    from dpcli.models.loading import read_checkpoint

    _, meta = read_checkpoint(weights)
    text = (meta.get("space", "") + " " + meta.get("training_data", "")).lower()
    if "linear" in text:
        return "linear", ("phone",)
    return "srgb", DOMAINS
