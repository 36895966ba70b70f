"""Reading checkpoints safely, recognising their architecture, loading them strictly.

Three steps (spandrel-style): read (safetensors, or ``torch.load(weights_only=True)``, never
arbitrary unpickling); canonicalise (unwrap ``state_dict`` / ``params``, strip ``module.``,
rename the authors' keys with their family's checkpoint filter); detect (each registered
:class:`dpcli.models.registry.Family` reads its configuration from the shapes, or its registered
configurations are matched), then load strictly. Channel order comes from the family: BaMBNet's
and DefocusGAN's authors trained on OpenCV-read (BGR) images, Restormer's and LaKDNet's on RGB;
:mod:`dpcli.api` swaps channels around BGR weights, so users never think about it. Nothing here
names a family.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from dpcli.errors import ModelError
from dpcli.models.registry import (
    Family,
    ModelInfo,
    get_family,
    list_families,
    list_models,
    list_pretrained,
    model_info,
    pretrained_cfg,
    weights_by_name,
)

FORMAT_TAG = "dpdeblur"
TASK_WORDS = {"deblur_pair": "deblurs DP pairs", "deblur_single": "deblurs single images",
              "coc": "estimates COC / defocus maps",
              "blur": "tells where single images are out of focus", "discriminator": "is a GAN discriminator"}


# --- reading ------------------------------------------------------------------------------------

def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a weights file -> (state dict, metadata). ``.safetensors`` or ``.pth``/``.pt``/``.ckpt``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("weights file not found", path)
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"not a readable safetensors file ({exc})", path) from exc
        return sd, meta
    if path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin", ".tar"):
        return _unwrap(_torch_load(path), path), {}
    raise ModelError(f"unknown weights format {path.suffix!r}: expected .safetensors, .pth or .pt", path)


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, no code execution."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            "refusing to load: the checkpoint holds Python objects beyond tensors and plain "
            "containers, and unpickling them could run code (torch.load weights_only=True). Load it "
            "in a trusted session and re-save only its state_dict, or convert it to .safetensors",
            path) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"not a readable PyTorch checkpoint ({str(exc).splitlines()[0]})", path) from exc


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint dict -> its state dict (key ``state_dict``, ``model`` or ``params``, or itself)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "params", "params_ema"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError("the checkpoint holds no state dict (expected a dict of tensors, or a dict "
                         "with key 'state_dict')", path)
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise ModelError("the checkpoint's state dict holds no tensors", path)
    return sd


def clean_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the ``module.`` prefix DataParallel / DDP put on every key."""
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state_dict.items()}


def official_family(state_dict: Mapping[str, torch.Tensor]) -> Family | None:
    """The first family whose authors' key format this state dict has (None: ours or unknown)."""
    sd = clean_state_dict(state_dict)
    return next((f for f in list_families() if f.is_official(sd)), None)


def is_official(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a state dict in some family's authors' key format."""
    return official_family(state_dict) is not None


def to_native(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None,
              family: str | None = None) -> dict[str, torch.Tensor]:
    """The authors' names -> ours, by ``family`` (else the family whose key format the file has)."""
    sd = clean_state_dict(state_dict)
    fam = get_family(family) if family else official_family(sd)
    return fam.to_native(sd, model) if fam is not None else sd


# --- detecting ----------------------------------------------------------------------------------

def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = model_info(arch).fn()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _matches(native: Mapping[str, torch.Tensor], arch: str, kwargs: Mapping[str, Any] | None = None) -> bool:
    if kwargs:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in model_info(arch).fn(**kwargs).state_dict().items()}
    else:
        expected = _expected_shapes(arch)
    want = {k: s for k, s in expected.items() if not k.startswith("kernel_bank.")}
    have = {k: tuple(v.shape) for k, v in native.items() if not k.startswith("kernel_bank.")}
    return want == have


@dataclass(frozen=True)
class Detected:
    """An architecture a state dict fits, with the config kwargs read from its shapes ({} = registered)."""

    arch: str
    kwargs: Mapping[str, Any]


def detect(state_dict: Mapping[str, torch.Tensor], family: str | None = None) -> list[Detected]:
    """Every architecture whose keys and shapes equal this state dict (authors' or our names).

    Each family renames the keys its way; one that reads its configuration from shapes
    (``Family.infer_arch``) is checked by building that configuration, the others by comparing
    with their registered configurations.
    """
    sd = clean_state_dict(state_dict)
    found: list[Detected] = []
    for fam in ([get_family(family)] if family else list_families()):
        native = fam.to_native(sd)
        if fam.infer_arch is not None:
            try:
                guess = fam.infer_arch(native)
            except (KeyError, ValueError, IndexError):
                guess = None
            if guess is not None and _matches(native, guess[0], guess[1]):
                found.append(Detected(guess[0], dict(guess[1])))
            continue
        names = [n for n in list_models() if model_info(n).family == fam.name and model_info(n).task != "discriminator"]
        found += [Detected(n, {}) for n in names if _matches(native, n)]
    return found


def detect_architectures(native: Mapping[str, torch.Tensor], family: str | None = None) -> list[str]:
    """Names of the architectures this state dict fits (see :func:`detect`)."""
    return [d.arch for d in detect(native, family)]


def key_diff(model: nn.Module, native: Mapping[str, torch.Tensor]) -> str:
    """'missing: a, b (+n more); unexpected: c; shape: d 3x3 vs 1x1' for an error message."""
    want = model.state_dict()
    missing = [k for k in want if k not in native]
    unexpected = [k for k in native if k not in want]
    shapes = [f"{k} {tuple(native[k].shape)} vs {tuple(want[k].shape)}" for k in want
              if k in native and tuple(native[k].shape) != tuple(want[k].shape)]

    def few(items: list[str]) -> str:
        return ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")

    parts = [f"missing keys: {few(missing)}" if missing else "",
             f"unexpected keys: {few(unexpected)}" if unexpected else "",
             f"shape mismatches: {few(shapes)}" if shapes else ""]
    return "; ".join(p for p in parts if p)


# --- loading ------------------------------------------------------------------------------------

def _build(arch: str, meta: Mapping[str, str], kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    info = model_info(arch)
    kwargs = dict(kwargs or {})
    if meta.get("arch") == arch and meta.get("config"):
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(meta["config"]).items()}
    return info.fn(**kwargs)


def load_into(model: nn.Module, arch: str, path: str | Path) -> dict[str, str]:
    """Load a weights file into ``model`` strictly; ModelError names missing/unexpected keys."""
    sd, meta = read_checkpoint(path)
    native = to_native(sd, model, model_info(arch).family)
    problems = key_diff(model, native)
    if problems:
        raise ModelError(f"these weights do not fit {arch}: {problems}", path)
    model.load_state_dict(native, strict=True)
    return meta


def create_model(name: str, pretrained: bool | str = False, *, weights: str | Path | None = None,
                 **kwargs: Any) -> nn.Module:
    """Build an architecture; ``pretrained=True`` / ``"arch.tag"`` loads registered weights.

    Args:
        name: ``arch`` or ``arch.tag``.
        pretrained: False (random init), True (the arch's first manifest entry), or a tag.
        weights: a checkpoint file to load instead (authors' .pth or our safetensors).
    Raises:
        ModelError: unknown name, no weights, sha256 mismatch, wrong architecture.
    """
    info = model_info(name)
    model = info.fn(**kwargs)
    tag = name.split(".", 1)[1] if "." in name else (pretrained if isinstance(pretrained, str) else None)
    if weights is not None or pretrained or tag:
        if weights is None:
            weights = pretrained_cfg(info.name, tag).path_checked()
        load_into(model, info.name, weights)
    return model


@dataclass
class LoadedModel:
    """A network ready for inference plus the facts the adapter needs (spandrel's descriptor).

    colour_order: channel order the weights expect (the authors': BGR).
    source: the weights file, or ``arch.tag`` of a registered entry.
    """

    module: nn.Module
    arch: str
    info: ModelInfo
    colour_order: str = "RGB"
    source: str = ""
    official: bool = False
    post: tuple[str, ...] = ()  # the post list of registered weights (PretrainedCfg.post; dpcli.methods.post)
    space: str = ""  # the encoding the weights' input is in ("linear" | "srgb"; "" = sRGB)

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def tiling(self):
        return self.module.tiling

    @property
    def multiple_of(self) -> int:
        return int(self.module.tiling.multiple_of)

    @property
    def supports_bf16(self) -> bool:
        return bool(getattr(self.module, "supports_bf16", False))

    @property
    def in_chans(self) -> int:
        return int(self.module.cfg.in_chans)


def resolve_arch(model: str | None, task: str) -> tuple[str | None, str | None]:
    """``--model`` value -> (family, architecture or None); ``arch.tag`` keeps its tag separately.
    ``auto`` / None: no family (a weights file then says which)."""
    if model in (None, "auto"):
        return None, None
    name = model.split(".", 1)[0]
    if name in {f.name for f in list_families()}:
        return name, get_family(name).defaults.get(task)
    info = model_info(name)
    return info.family, info.name


def load_model(model: str | None = "bambnet", *, task: str = "deblur_pair", weights: str | Path | None = None,
               arch: str | None = None) -> LoadedModel:
    """Build a network and load its weights (registered, or a file the user gives).

    Args:
        model: family (``bambnet``, ``restormer``, ... see ``dpdeblur models``), architecture,
            ``arch.tag``, or ``auto`` / None with ``weights``: the family the file's keys say.
        task: what the caller needs: ``deblur_pair`` | ``deblur_single`` | ``coc``.
        weights: checkpoint file (authors' .pth/.pt, possibly ``module.``-prefixed, or safetensors), or
            the ``arch.tag`` name of shipped weights (as ``model``).
        arch: architecture when the file alone cannot tell (BaMBNet's deblur and COC nets share
            every key and shape: that ambiguity is reported, never guessed).
    Raises:
        ModelError: no weights (says where they come from), ambiguous or wrong architecture,
            sha256 mismatch, unreadable file.
    """
    model, weights = weights_by_name(model, weights)  # weights=NAME of shipped weights = model NAME
    family, default_arch = resolve_arch(model, task)
    tag = model.split(".", 1)[1] if model and "." in model else None
    if arch is not None:
        info = model_info(arch)
        if family is not None and info.family != family:
            raise ModelError(f"--arch {arch} is a {info.family} network, not {family}")
    if weights is None:
        chosen = arch or default_arch
        if chosen is None:
            raise ModelError(f"{model} has no network that {TASK_WORDS.get(task, task)}")
        _check_task(chosen, task)
        entry = _pretrained_or_hint(chosen, family, task, tag)
        path = entry.path_checked()
        net = _build(chosen, {})
        load_into(net, chosen, path)
        return LoadedModel(net.eval(), chosen, model_info(chosen), entry.cfg.colour_order, entry.cfg.name,
                           post=tuple(entry.cfg.post), space=entry.cfg.space)

    path = Path(weights)
    sd, meta = read_checkpoint(path)
    sd = clean_state_dict(sd)
    found: list[Detected] = []
    if meta.get("arch") in list_models():  # our files say what they are
        found = [Detected(meta["arch"], {})]
        if arch is None and family is not None and model_info(meta["arch"]).family != family:
            raise ModelError(f"these are {meta['arch']} weights, not {family}: use --method "
                             f"{model_info(meta['arch']).family}", path)
    else:
        found = detect(sd, family if arch is None else model_info(arch).family)
    if arch is None:
        if len(found) > 1:
            names = [d.arch for d in found]
            raise ModelError(
                f"these weights fit {' and '.join(names)} equally (same keys and shapes); say which "
                f"network they are with " + " or ".join(f"--arch {a}" for a in names), path)
        if not found:
            elsewhere = detect(sd) if family else []
            if elsewhere:
                raise ModelError(f"these are {' / '.join(d.arch for d in elsewhere)} weights, not {family}: use "
                                 f"--method {model_info(elsewhere[0].arch).family} (with --arch if asked)", path)
            probe_arch = default_arch or (list_models(f"{family}*") or [None])[0]
            if probe_arch is None:
                raise ModelError("these weights fit no known architecture (compared with every family's keys "
                                 "and shapes); see `dpdeblur models`", path)
            probe = _build(probe_arch, {})
            raise ModelError(f"these weights fit no {family or 'known'} architecture "
                             f"(compared with {probe_arch}: "
                             f"{key_diff(probe, to_native(sd, probe, model_info(probe_arch).family))}); "
                             "see `dpdeblur models`", path)
        chosen = found[0]
    else:
        chosen = next((d for d in found if d.arch == arch), Detected(arch, {}))
    _check_task(chosen.arch, task)
    net = _build(chosen.arch, meta, chosen.kwargs)
    native = to_native(sd, net, model_info(chosen.arch).family)
    problems = key_diff(net, native)
    if problems:
        raise ModelError(f"these weights do not fit {chosen.arch}: {problems}", path)
    net.load_state_dict(native, strict=True)
    fam = get_family(model_info(chosen.arch).family)
    official = fam.is_official(sd)
    colour = fam.official_colour_order if official else meta.get("colour_order", "RGB")
    return LoadedModel(net.eval(), chosen.arch, model_info(chosen.arch), colour, str(path), official)


def _pretrained_or_hint(arch: str, family: str | None, task: str, tag: str | None):
    """The manifest entry of ``arch``; if there is none, the error names the installed weights of
    the same family and task. They are never used silently: ours are trained for one kind of data."""
    fam = get_family(model_info(arch).family)
    if not fam.ships_weights and not any(c.arch == arch for c in list_pretrained()):
        raise ModelError(f"{fam.name} runs with your copy of the authors' weights: pass --weights FILE "
                         f"(published at {fam.weights_source}; licence: {fam.licence})")
    try:
        return pretrained_cfg(arch, tag)
    except ModelError as exc:
        other = [c for c in list_pretrained() if c.arch != arch and c.arch in list_models()
                 and model_info(c.arch).family == (family or model_info(arch).family)
                 and model_info(c.arch).task == task]
        if not other:
            raise
        names = ", ".join(f"{c.name} ({c.domain or 'any data'})" for c in other)
        raise ModelError(f"no trained weights for {arch} ship with dpdeblur; for {fam.name} these do: {names}. "
                         "Name one as the method (--method NAME; model=NAME in Python), or give your own "
                         "file (--weights FILE)") from None


def _check_task(arch: str, task: str) -> None:
    info = model_info(arch)
    if info.task != task:
        raise ModelError(f"{arch} {TASK_WORDS.get(info.task, info.task)}, but this needs a network that "
                         f"{TASK_WORDS.get(task, task)}")


def save_weights(model: nn.Module, arch: str, path: str | Path, *, colour_order: str = "RGB",
                 half: bool = False, **metadata: str) -> Path:
    """Save our weights as safetensors with the metadata that makes them self-describing.

    Args:
        model: the network (its ``cfg`` dataclass is stored so custom widths reload).
        arch: registered architecture name.
        half: store fp16 (half the size; loading casts back to float32).
        metadata: extra strings (training data, recipe, metrics as JSON...).
    """
    from safetensors.torch import save

    from dpcli.io.images import atomic_write_bytes

    model_info(arch)  # validates the name
    config: dict[str, Any] = {}
    cfg = getattr(model, "cfg", None)
    if cfg is not None and is_dataclass(cfg):
        config = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    kb = getattr(model, "kernel_bank", None)
    if kb is not None:
        config["max_radius"] = kb.max_radius
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_TAG, "arch": arch, "config": json.dumps(config), "colour_order": colour_order,
            **{k: str(v) for k, v in metadata.items()}}
    atomic_write_bytes(Path(path), save(tensors, metadata=meta), overwrite=True)
    return Path(path)


__all__ = ["LoadedModel", "create_model", "load_model", "load_into", "read_checkpoint", "clean_state_dict",
           "to_native", "detect", "Detected", "detect_architectures", "official_family", "save_weights", "is_official"]
