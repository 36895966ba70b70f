"""One registry, one front door (timm-style): architectures and their weights.

* Architectures register an entrypoint with :func:`register_model` (``bambnet_deblur``,
  ``defocusgan_generator_small``, ...). :func:`list_models` lists them,
  :func:`dpcli.models.loading.create_model` builds one, optionally with weights.
* Network families (``bambnet``, ``restormer``, ...) register a :class:`Family` with
  :func:`register_family` from their own module: the default architecture per task, how to
  recognise and rename the authors' checkpoints, how to read a configuration from a file's
  shapes, the module holding its training stages, and where users get weights the project does
  not ship. Every module of ``dpcli.models`` is imported on first use, and third-party packages
  add families through the ``dpcli.families`` entry-point group (each entry names a module to
  import or a function to call: ``toy = "mypkg.toy:register"``), so the loader, ``run`` and
  ``train`` hold no family names (docs/families.md).
* Weights are named ``arch.tag`` and described by :class:`PretrainedCfg` entries of
  ``dpcli/weights/manifest.json`` (file, sha256, colour order, input recipe, training data, metrics).
  The sha256 is checked every time a file is loaded.
"""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from dpcli.errors import ModelError

@dataclass(frozen=True)
class ModelInfo:
    """What an architecture is for.

    task: ``deblur_pair`` | ``deblur_single`` | ``coc`` (signed COC / defocus radius from a pair)
          | ``blur`` (where one image is out of focus) | ``discriminator``.
    recipe: input our module takes: ``LR`` = cat(left, right), ``C`` = one image.
    official_recipe: what the authors' forward receives (``LRR``, ``LR``, ``CC``): the extra
        channels only fed their training masks.
    """

    name: str
    family: str
    task: str
    recipe: str
    official_recipe: str
    paper: str
    fn: Callable[..., nn.Module]
    cfg: Any = None


@dataclass(frozen=True)
class PretrainedCfg:
    """One weights file (``dpcli/weights/manifest.json`` entry)."""

    name: str  # "arch.tag"
    file: str  # relative to the manifest's folder, or absolute
    sha256: str
    colour_order: str = "RGB"  # channel order the weights expect: RGB | BGR
    input_recipe: str = "LR"
    multiple_of: int = 16
    training_data: str = ""
    recipe: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    license: str = ""
    notes: str = ""
    # data it is for: "phone" (linear grey raw planes) and/or "dslr" (colour sRGB), comma-separated;
    # the space its input is encoded in ("linear" | "srgb"). `dpdeblur run` never uses weights
    # outside their domain by default and ranks them by the domain's metrics above.
    domain: str = ""
    space: str = ""
    # what runs after the network, in order: named post steps ("keep_mean:32", "focus_gate",
    # "endorse:ARCH.TAG", "correction_gate", "blur_gate:ARCH.TAG"), built and applied by
    # dpcli.methods.post; an entry written with the five flags of old manifests is read into this
    # list (post_from_flags)
    post: tuple[str, ...] = ()

    @property
    def arch(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""


_MODELS: dict[str, ModelInfo] = {}
_FAMILIES: dict[str, "Family"] = {}
ENTRY_POINT_GROUP = "dpcli.families"


@dataclass(frozen=True)
class Family:
    """A network family: everything the loader, ``run`` and ``train`` need to know about it.

    name: ``--method`` name of the family.
    defaults: task -> architecture that ``--method NAME`` (``defocus-map --arch NAME``) means
        (``deblur_pair``, ``deblur_single``, ``coc``).
    official_keys: True for a state dict in the authors' key format (after ``module.`` is stripped).
    checkpoint_filter: (state dict, model or None) -> our names (identity if None).
    infer_arch: (our-named state dict) -> (architecture, config kwargs) read from tensor shapes, or
        None when the file is not this family's; families without it are matched by shapes against
        their registered configurations.
    official_colour_order: channel order of the authors' files (``RGB`` | ``BGR``).
    training: module that registers the family's training stages (:mod:`dpcli.train.stages`), or "".
    weights_source: where the authors publish weights users may bring (``--weights``).
    licence: the licence of those weights.
    ships_weights: False when dpdeblur never ships weights of this family (users bring theirs).
    coc_shares_keys: its COC net has every key and shape of its deblurring net (BaMBNet), so a
        file given to ``run`` may be the COC net: its output is then checked against the input.
    """

    name: str
    paper: str = ""
    defaults: Mapping[str, str] = field(default_factory=dict)
    official_keys: Callable[[Mapping[str, Any]], bool] | None = None
    checkpoint_filter: Callable[..., dict] | None = None
    infer_arch: Callable[[Mapping[str, Any]], tuple[str, dict] | None] | None = None
    official_colour_order: str = "RGB"
    training: str = ""
    weights_source: str = ""
    licence: str = ""
    ships_weights: bool = True
    coc_shares_keys: bool = False

    def to_native(self, state_dict: Mapping[str, Any], model: nn.Module | None = None) -> dict:
        """The authors' names -> ours (our own files pass unchanged)."""
        return self.checkpoint_filter(state_dict, model) if self.checkpoint_filter else dict(state_dict)

    def is_official(self, state_dict: Mapping[str, Any]) -> bool:
        return bool(self.official_keys and self.official_keys(state_dict))


def register_family(family: Family) -> Family:
    """Register a network family (call it in the family's module, next to its architectures)."""
    if family.name in _FAMILIES and _FAMILIES[family.name] != family:
        raise ValueError(f"family {family.name!r} registered twice")
    _FAMILIES[family.name] = family
    return family


def list_families() -> list[Family]:
    _ensure_registered()
    return [_FAMILIES[n] for n in sorted(_FAMILIES)]


def weights_hint() -> str:
    """Where a model's weights come from, said whenever none are available: training, or the
    authors' files of the registered families that publish them."""
    sources = ", ".join(f"{f.name}: {f.weights_source.split(' (')[0]}" for f in list_families()
                        if f.weights_source and f.ships_weights)
    return ("train them with `dpdeblur train` (they are then listed by `dpdeblur models`), or pass the "
            f"authors' DPDD checkpoint with --weights PATH ({sources})")


def deblur_families() -> list[str]:
    """Names of the registered families with a network that deblurs (DP pairs or single images)."""
    return [f.name for f in list_families() if {"deblur_pair", "deblur_single"} & set(f.defaults)]


def get_family(name: str) -> Family:
    """A registered family; a bad name lists the valid ones."""
    _ensure_registered()
    if name not in _FAMILIES:
        raise ModelError(f"unknown network family {name!r}; valid: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[name]


def register_model(*, family: str, task: str, recipe: str, official_recipe: str, paper: str,
                   cfg: Any = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering an architecture entrypoint under its function name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelInfo(name, family, task, recipe, official_recipe, paper, fn, cfg)
        return fn

    return wrap


_LOADED = False


def _ensure_registered() -> None:
    """Import every module of ``dpcli.models`` (each registers its architectures and family), then
    the modules named by the ``dpcli.families`` entry points of installed packages."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import pkgutil

    package = __name__.rpartition(".")[0]  # dpcli.models, read from here: no import back into it
    for mod in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        importlib.import_module(f"{package}.{mod.name}")
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()  # a module (registers on import) or a function that registers
            if callable(target):
                target()
        except Exception as exc:  # a broken plug-in must not stop the built-in families
            import warnings

            warnings.warn(f"network family plug-in {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)


def list_models(pattern: str = "*", *, task: str | None = None, pretrained: bool = False) -> list[str]:
    """Architecture names matching ``pattern`` (fnmatch); ``pretrained`` lists ``arch.tag`` names."""
    _ensure_registered()
    if pretrained:
        return [c.name for c in list_pretrained() if fnmatch.fnmatch(c.name, pattern)
                and (task is None or model_info(c.arch).task == task)]
    return sorted(n for n, i in _MODELS.items() if fnmatch.fnmatch(n, pattern) and (task is None or i.task == task))


def model_info(name: str) -> ModelInfo:
    """Registry entry of an architecture; a bad name says what is valid."""
    _ensure_registered()
    arch = name.split(".", 1)[0]
    if arch not in _MODELS:
        close = [n for n in _MODELS if n.startswith(arch.split("_")[0])] or sorted(_MODELS)
        raise ModelError(f"unknown model {name!r}; valid architectures: {', '.join(sorted(close))} "
                         "(see `dpdeblur models`)")
    return _MODELS[arch]


# --- the weights manifest -----------------------------------------------------------------------

def weights_dir() -> Path:
    """``$DPDEBLUR_WEIGHTS`` or the package's own ``dpcli/weights/`` folder (package data: a wheel
    ships the weights and their manifest, so an installed copy has the checkout's defaults)."""
    env = os.environ.get("DPDEBLUR_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "weights"


def manifest_path() -> Path:
    return weights_dir() / "manifest.json"


def list_pretrained() -> list[PretrainedCfg]:
    """Entries of ``dpcli/weights/manifest.json`` (an absent manifest = no weights)."""
    path = manifest_path()
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read the weights manifest: {exc}", path) from exc
    entries = data.get("weights", []) if isinstance(data, dict) else data
    out = []
    for e in entries:
        try:
            out.append(PretrainedCfg(**with_post_list(e)))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"bad manifest entry {e.get('name', '?')!r}: {exc}", path) from exc
    return out


# the five post flags of manifests written before the post list, in the order the engine ran
# them: flag -> the post step it names (a value of "" / False / 0 = off)
LEGACY_POST_FLAGS = {"keep_mean_px": "keep_mean", "focus_gate": "focus_gate", "endorse": "endorse",
                     "correction_gate": "correction_gate", "blur_gate": "blur_gate"}


def post_from_flags(keep_mean_px: float = 0.0, focus_gate: bool = False, endorse: str = "",
                    correction_gate: bool = False, blur_gate: str = "") -> tuple[str, ...]:
    """The post list that the five flags of an old manifest entry meant, in the order the engine ran
    them: ``keep_mean_px=32, correction_gate=True`` -> ``("keep_mean:32", "correction_gate")``."""
    steps = [f"keep_mean:{float(keep_mean_px):g}" if keep_mean_px and float(keep_mean_px) > 0 else "",
             "focus_gate" if focus_gate else "", f"endorse:{endorse}" if endorse else "",
             "correction_gate" if correction_gate else "", f"blur_gate:{blur_gate}" if blur_gate else ""]
    return tuple(s for s in steps if s)


def with_post_list(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest entry with its post steps as a ``post`` list: the five flags of old manifests
    (:data:`LEGACY_POST_FLAGS`) translated by :func:`post_from_flags`; ValueError when an entry
    gives both a ``post`` list and a flag that is on."""
    out = {k: v for k, v in entry.items() if k not in LEGACY_POST_FLAGS}
    flags = post_from_flags(**{k: v for k, v in entry.items() if k in LEGACY_POST_FLAGS})
    post = entry.get("post")
    if isinstance(post, str) or not isinstance(post or [], (list, tuple)):
        raise ValueError(f"post must be a list of step names, got {post!r}")
    if post and flags:
        raise ValueError(f"give the post list or the old flags ({', '.join(flags)}), not both")
    out["post"] = tuple(post or flags)
    return out


@dataclass(frozen=True)
class _Resolved:
    cfg: PretrainedCfg

    @property
    def path(self) -> Path:
        p = Path(self.cfg.file)
        return p if p.is_absolute() else weights_dir() / p

    def path_checked(self) -> Path:
        """The file, after checking it exists and that its sha256 is the manifest's."""
        path = self.path
        if not path.is_file():
            raise ModelError(f"weights {self.cfg.name} are listed in the manifest but the file is missing",
                             path)
        digest = sha256_file(path)
        if digest != self.cfg.sha256.lower():
            raise ModelError(f"sha256 mismatch for {self.cfg.name}: file has {digest}, manifest says "
                             f"{self.cfg.sha256} (corrupt or replaced file; re-download or retrain)", path)
        return path


def find_pretrained(name: str) -> _Resolved | None:
    """The manifest entry named ``name`` (``arch.tag``), or None when no such weights ship."""
    return next((_Resolved(c) for c in list_pretrained() if c.name == name), None)


def weights_by_name(model: str | None, weights: str | Path | None) -> tuple[str | None, str | Path | None]:
    """``--weights NAME`` / ``weights=NAME`` with the ``arch.tag`` of shipped weights (and no file of
    that name) -> (NAME, None): the same as ``--method NAME``. Anything else comes back unchanged.

    Raises:
        ModelError: the name is of another network than ``model`` names (a family or architecture).
    """
    if weights is None or Path(weights).is_file():
        return model, weights
    found = find_pretrained(str(weights))
    if found is None:
        return model, weights
    name, arch = found.cfg.name, found.cfg.arch
    if model not in (None, "auto", name, arch) and model_info(arch).family != model:
        raise ModelError(f"--weights {name} are {arch} weights, not {model}: leave out --method {model} "
                         f"(or give --method {name} alone)")
    return name, None


def pretrained_cfg(arch: str, tag: str | None = None) -> _Resolved:
    """The manifest entry for ``arch`` (``tag`` or the first listed); ModelError says where weights come from."""
    entries = [c for c in list_pretrained() if c.arch == arch and (tag is None or c.tag == tag)]
    if not entries:
        have = [c.name for c in list_pretrained() if c.arch == arch]
        if tag is not None and have:
            raise ModelError(f"no weights {arch}.{tag}; available: {', '.join(have)}")
        raise ModelError(f"no trained weights for {arch} are installed: {weights_hint()}")
    return _Resolved(entries[0])


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def describe(cfg: PretrainedCfg) -> dict[str, Any]:
    return asdict(cfg) | {"arch": cfg.arch, "tag": cfg.tag}
