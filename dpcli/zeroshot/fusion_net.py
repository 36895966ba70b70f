"""Learned fusion of the zero-shot stage-1 layers (issue 18): a compact CNN that corrects the
residual layer choice per pixel, trained on synthetic DP scenes only (``dpcli.zeroshot.fusion_train``).

Design (ours): the network outputs per-pixel, per-layer LOGIT CORRECTIONS added to the residual
choice's logits, then a softmax across layers; not a residual correction of the blended image.
Why: the output stays a convex blend of the stage-1 layers (each an exact regularised solution
of the views), so the net cannot hallucinate texture, its map is still a defocus map (sum r_i D_i),
and with a zero correction it is exactly the residual choice (the head starts at zero). One small
conv net is SHARED across layers: it scores layer i from its own features, its two neighbours'
in radius order, the mean over all layers and per-pixel context (DeepSets-style layer mean at
every block), so it works for any layer count and either focus side. It runs at 1/4 resolution
(the oracle's choice varies over ~15 px); the correction is upsampled bilinearly.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dpcli.zeroshot.fusion import register_fusion
from dpcli.zeroshot.fusion_features import LAYER_FEATURES, SHARED_FEATURES, FusionFeatures, fusion_features

__all__ = ["FusionNetConfig", "FusionNet", "fuse_logits", "learned_weights", "apply_net", "load_fusion_net",
           "auto_fusion_method",
           "save_fusion_net", "default_fusion_weights", "fusion_domain", "FUSION_TAGS"]

# weights files in dpcli/weights/, by domain (shipped only when they beat the residual choice on real data)
# (keys: dpcli.domains.DOMAINS; the tag keeps the file name it shipped under)
FUSION_TAGS = {"phone": "zeroshot_fusion_small.pixel-synth", "dslr": "zeroshot_fusion_small.dslr-synth"}


@dataclass
class FusionNetConfig:
    """``layer_channels`` / ``shared_channels``: which :func:`fusion_features` channels the net reads
    (None: all). Scene-level features (the combined view's contrast and residual levels, overshoot
    relative to the mean level) differ between dead-leaves scenes and real photos by orders of
    magnitude (measured: the combined view's median relative gradient power is ~60x lower on
    Pixel 4 scene 006 than on our synthetic scenes), so a net meant to transfer reads only the
    within-scene relative ones."""

    layer_features: int = LAYER_FEATURES
    shared_features: int = SHARED_FEATURES
    width: int = 24
    dilations: tuple[int, ...] = (1, 2, 4)
    layer_channels: tuple[int, ...] | None = None
    shared_channels: tuple[int, ...] | None = None

    @property
    def n_layer(self) -> int:
        return self.layer_features if self.layer_channels is None else len(self.layer_channels)

    @property
    def n_shared(self) -> int:
        return self.shared_features if self.shared_channels is None else len(self.shared_channels)


class FusionNet(nn.Module):
    """(B, L, K, h, w) per-layer + (B, S, h, w) shared features -> (B, L, h, w) logit corrections."""

    def __init__(self, config: FusionNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or FusionNetConfig()
        c = cfg.width
        self.stem = nn.Conv2d(4 * cfg.n_layer + cfg.n_shared, c, 1)
        self.own = nn.ModuleList(nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in cfg.dilations)
        self.ctx = nn.ModuleList(nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=False) for d in cfg.dilations)
        self.head = nn.Conv2d(c, 1, 1)
        nn.init.zeros_(self.head.weight)  # starts as the residual choice
        nn.init.zeros_(self.head.bias)

    def forward(self, layer: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.layer_channels is not None:
            layer = layer[:, :, list(cfg.layer_channels)]
        if cfg.shared_channels is not None:
            shared = shared[:, list(cfg.shared_channels)]
        b, n, k, h, w = layer.shape
        prev = torch.cat([layer[:, :1], layer[:, :-1]], 1)  # neighbours in radius order (edges repeat)
        nxt = torch.cat([layer[:, 1:], layer[:, -1:]], 1)
        mean = layer.mean(1, keepdim=True).expand(-1, n, -1, -1, -1)
        sh = shared[:, None].expand(-1, n, -1, -1, -1)
        x = torch.cat([layer, prev, nxt, mean, sh], 2).reshape(b * n, -1, h, w)
        hid = F.relu(self.stem(x))
        c = hid.shape[1]
        for own, ctx in zip(self.own, self.ctx):
            pooled = ctx(hid.view(b, n, c, h, w).mean(1))  # (B, c, h, w): computed once, not per layer
            hid = hid + F.relu((own(hid).view(b, n, c, h, w) + pooled[:, None]).reshape(b * n, c, h, w))
        return self.head(hid).view(b, n, h, w)


def fuse_logits(net: FusionNet, feats_layer: torch.Tensor, feats_shared: torch.Tensor, base_logits: torch.Tensor,
                scale: int) -> torch.Tensor:
    """Fusion weights from features: softmax over layers of the base logits plus the upsampled
    correction. (B, L, K, h, w), (B, S, h, w), (B, L, H, W) -> (B, L, H, W). Differentiable (training)."""
    delta = net(feats_layer, feats_shared)
    hh, ww = base_logits.shape[-2:]
    h, w = delta.shape[-2:]
    delta = F.interpolate(delta, size=(h * scale, w * scale), mode="bilinear", align_corners=False)
    return torch.softmax(base_logits + delta[..., :hh, :ww], 1)


@torch.no_grad()
def learned_weights(left: torch.Tensor, right: torch.Tensor, stack, net: FusionNet,
                    radii: torch.Tensor | None = None, windows: tuple[int, ...] = (15, 31, 61),
                    temperature: float = 0.6) -> torch.Tensor:
    """Per-pixel layer weights of the learned fusion; the counterpart of ``residual_weights``.

    Args:
        left, right: (C, H, W) views. stack: :class:`dpcli.zeroshot.init.LayerStack` (latent,
            blur_left, blur_right (L, C, H, W); radii (L,) unless given here).
        net: :class:`FusionNet` (:func:`load_fusion_net`).
        windows, temperature: the residual choice the network corrects (the config's).

    Returns:
        (L, H, W) weights summing to 1 over layers.
    """
    radii = radii if radii is not None else stack.radii
    if radii is None:
        raise ValueError("learned_weights needs the layers' radii (stack.radii or radii=)")
    feats = fusion_features(left, right, stack.latent, stack.blur_left, stack.blur_right, radii, windows, temperature)
    return apply_net(net, feats)


@torch.no_grad()
def apply_net(net: FusionNet, feats: FusionFeatures) -> torch.Tensor:
    """(L, H, W) weights of ``net`` on one stack's :class:`FusionFeatures`."""
    net.eval()
    dev = next(net.parameters()).device
    return fuse_logits(net, feats.layer[None].to(dev), feats.shared[None].to(dev), feats.base_logits[None].to(dev),
                       feats.scale)[0]


def _shipped(domain: str):
    """The manifest entry of the shipped fusion weights for ``domain`` (None when not shipped)."""
    from dpcli.models.registry import find_pretrained

    from dpcli.domains import normalise_domain

    domain = normalise_domain(domain)  # "pixel" (an older name of phone) still accepted
    return find_pretrained(FUSION_TAGS[domain])


def default_fusion_weights(domain: str = "phone") -> Path:
    """Path of the shipped weights for ``domain`` ("phone" | "dslr"): the manifest's file when it
    lists them, else where they would be (a path that does not exist)."""
    from dpcli.models.registry import weights_dir

    entry = _shipped(domain)
    if entry is not None:
        return entry.path
    from dpcli.domains import normalise_domain

    return weights_dir() / f"{FUSION_TAGS[normalise_domain(domain)]}.safetensors"


def save_fusion_net(net: FusionNet, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``net`` as safetensors (config and ``meta`` in the metadata), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    metadata = {"arch": "zeroshot_fusion", "config": json.dumps(asdict(net.config))}
    metadata |= {k: v if isinstance(v, str) else json.dumps(v) for k, v in (meta or {}).items()}
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp), metadata=metadata)
    tmp.chmod(0o644)
    tmp.replace(path)
    return path


def load_fusion_net(path: str | Path | None = None, domain: str = "phone") -> FusionNet:
    """Load fusion weights (a safetensors file; default: the shipped ones for ``domain``)."""
    from safetensors import safe_open

    from dpcli.errors import ModelError

    if path is None:
        entry = _shipped(domain)
        if entry is None:
            raise ModelError(f"no learned fusion weights are shipped for {domain} pairs (they did not beat the "
                             "residual choice on real data); use --fusion residual")
        path = entry.path_checked()  # listed in dpcli/weights/manifest.json, sha256 checked
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"fusion weights not found: {path}")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("arch") != "zeroshot_fusion":
        raise ModelError(f"{path} holds no zero-shot fusion weights (arch {meta.get('arch')!r})")
    cfg = json.loads(meta.get("config", "{}"))
    for key in ("dilations", "layer_channels", "shared_channels"):
        if cfg.get(key) is not None:
            cfg[key] = tuple(cfg[key])
    net = FusionNet(FusionNetConfig(**cfg))
    net.load_state_dict(state)
    return net.eval()


_LOADED: dict[str, FusionNet] = {}


def fusion_domain(channels: int) -> str:
    """Domain of the shipped weights a stack uses: grey views are phone DP raw (Pixel 4-like),
    colour views DSLR pairs (the dslr weights, or the pixel ones where those are not shipped)."""
    if channels == 1 or _shipped("dslr") is None:
        return "phone"
    return "dslr"


@register_fusion("learned")
def _learned(left: torch.Tensor, right: torch.Tensor, stack, cfg) -> torch.Tensor:
    """The "learned" fusion method: ``cfg.fusion_weights`` (a file) if the config has it, else the
    shipped weights of the views' domain (:func:`fusion_domain`)."""
    path = getattr(cfg, "fusion_weights", None)
    key = str(path) if path else fusion_domain(left.shape[0])
    if key not in _LOADED:
        _LOADED[key] = load_fusion_net(path) if path else load_fusion_net(domain=key)
    return learned_weights(left, right, stack, _LOADED[key].to(left.device), windows=cfg.choice_windows,
                           temperature=cfg.choice_temperature)


def auto_fusion_method(channels: int, cfg) -> str:
    """What the default fusion ("auto") runs for views of ``channels`` channels: "learned" with
    ``cfg.fusion_weights``, or where weights ship for the views' domain (colour: dslr; measured on
    the Canon dev scenes +0.88 dB over the input against +0.74 for the residual choice), else
    "residual" (grey phone pairs: no learned fusion beat it on the Pixel 4 scenes)."""
    if getattr(cfg, "fusion_weights", None):
        return "learned"
    return "learned" if fusion_domain(channels) == "dslr" else "residual"


@register_fusion("auto")
def _auto(left: torch.Tensor, right: torch.Tensor, stack, cfg):
    """The default fusion method: runs the registered method :func:`auto_fusion_method` picks."""
    from dpcli.zeroshot.fusion import fuse_layers

    return fuse_layers(left, right, stack, cfg, method=auto_fusion_method(left.shape[0], cfg))
