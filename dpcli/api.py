"""Python API: deblur DP pairs and single images, estimate COC maps (the CLI calls these).

Arrays follow CONVENTIONS.md: float values in [0, 1] (integer numpy arrays are scaled by their
type's maximum), RGB or grey. Accepted layouts: torch (C, H, W) / (N, C, H, W); numpy (C, H, W)
or (H, W, C) (recognised by which axis has 1 or 3 entries) or (H, W). Results come back in the
caller's type and layout. Any size works: inputs are padded to the network's multiple and,
by default, processed in overlapping tiles (bounded memory); the authors' BGR weights get
their channel order swapped here, never by the user.

>>> import numpy as np, dpcli
>>> left = right = np.random.rand(3, 64, 80).astype(np.float32)
>>> aif = dpcli.deblur_pair(left, right, model="bambnet", weights="BaMBNet.pth", arch="bambnet_deblur")  # doctest: +SKIP
>>> aif = dpcli.deblur_pair(left, right, weights="dual_pixel_defocus_deblurring.pth")  # Restormer  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dpcli.device import precision_dtype, release_freed_memory, resolve_device
from dpcli.errors import DpError, InputError, ModelError
from dpcli.models.loading import LoadedModel, load_model
from dpcli.tiling import run_tiled

__all__ = ["Deblurrer", "deblur", "deblur_pair", "deblur_image", "estimate_coc", "load_session"]


# --- layouts --------------------------------------------------------------------------------------

@dataclass
class _Layout:
    numpy: bool
    layout: str  # "NCHW" | "CHW" | "HWC" | "HW"
    dtype: Any

    def restore(self, out: torch.Tensor) -> Any:
        """(N, C, H, W) float32 CPU tensor -> the caller's type and layout."""
        if self.layout == "CHW":
            out = out[0]
        elif self.layout == "HWC":
            out = out[0].permute(1, 2, 0)
        elif self.layout == "HW":
            out = out[0].mean(0) if out.shape[1] > 1 else out[0, 0]
        if self.numpy:
            return np.ascontiguousarray(out.numpy())
        return out


def _to_nchw(image: Any, what: str) -> tuple[torch.Tensor, _Layout]:
    numpy = isinstance(image, np.ndarray)
    if not numpy and not isinstance(image, torch.Tensor):
        raise InputError(f"{what}: expected a numpy array or torch tensor, got {type(image).__name__}")
    t = torch.from_numpy(np.ascontiguousarray(image)) if numpy else image.detach()
    if not t.is_floating_point():
        if t.dtype == torch.uint8:
            t = t.float() / 255.0
        elif t.dtype in (torch.int32, torch.int16) or str(t.dtype) == "torch.uint16":
            t = t.float() / 65535.0
        else:
            raise InputError(f"{what}: unsupported dtype {t.dtype}")
    t = t.float().cpu()
    if t.ndim == 2:
        return t[None, None], _Layout(numpy, "HW", t.dtype)
    if t.ndim == 3:
        if t.shape[0] in (1, 3):
            return t[None], _Layout(numpy, "CHW", t.dtype)
        if t.shape[-1] in (1, 3):
            return t.permute(2, 0, 1)[None], _Layout(numpy, "HWC", t.dtype)
        raise InputError(f"{what}: cannot tell the channel axis of shape {tuple(t.shape)} (1 or 3 channels)")
    if t.ndim == 4 and not numpy and t.shape[1] in (1, 3):
        return t, _Layout(False, "NCHW", t.dtype)
    raise InputError(f"{what}: unsupported shape {tuple(t.shape)}; expected (C, H, W), (H, W, C), (H, W) "
                     "or a torch (N, C, H, W) batch with 1 or 3 channels")


# --- tile planning ------------------------------------------------------------------------------

# Activation memory of a full-resolution pass, bytes per input pixel per feature channel, measured
# with benchmarks/bench_infer.py (paper-size nets, 512x512: ~1.6 KB/px fp32, ~1.0 KB/px bf16).
_BYTES_PER_PX_PER_CH = {"fp32": 26.0, "bf16": 16.0, "fp16": 16.0}
# Peak-RSS target of a run (issue: <= 2 GiB at any image size). Reserved: interpreter, torch,
# weights and allocator slack; the full-frame views and output are counted per image (frame_bytes).
MEMORY_BUDGET_GIB = 2.0
_RESERVED_GIB = 1.0


def tile_budget_px(width: int, precision: str, budget_gib: float | None = None, frame_bytes: int = 0) -> int:
    """Largest tile area (px) whose activations fit the memory budget, after ``frame_bytes`` of
    full-frame buffers (input views, output, blend weights: 0.9 GiB for a 24 MP RGB pair)."""
    import os

    gib = budget_gib or float(os.environ.get("DPDEBLUR_MEMORY_GIB", MEMORY_BUDGET_GIB))
    per_px = _BYTES_PER_PX_PER_CH.get(precision, 26.0) * width
    return max(64 * 64, int(((gib - _RESERVED_GIB) * 2**30 - frame_bytes) / per_px))


def plan_tiles(h: int, w: int, max_px: int, overlap: int, multiple_of: int = 16) -> int | tuple[int, int]:
    """Rectangular tiles covering (h, w) with the least total work and area <= ``max_px``.

    Returns 0 (one full-frame pass) when the whole image fits, else (tile_h, tile_w) where 0
    means "whole axis". E.g. 1680x1120 fp32 (~0.8 MP allowed) -> 3 tiles of 1120x624.
    """
    from dpcli.tiling import tile_grid

    hp, wp = -(-h // multiple_of) * multiple_of, -(-w // multiple_of) * multiple_of
    if hp * wp <= max_px:
        return 0
    best: tuple[float, int, tuple[int, int]] | None = None
    for ny in range(1, 17):
        for nx in range(1, 17):
            th = hp if ny == 1 else -(-(hp + (ny - 1) * overlap) // ny // multiple_of) * multiple_of
            tw = wp if nx == 1 else -(-(wp + (nx - 1) * overlap) // nx // multiple_of) * multiple_of
            if th * tw > max_px or min(th, tw) < 2 * overlap + multiple_of:
                continue
            (ys, th2), (xs, tw2) = tile_grid(hp, th, overlap, multiple_of), tile_grid(wp, tw, overlap, multiple_of)
            work = len(ys) * len(xs) * th2 * tw2
            key = (work, len(ys) * len(xs), (0 if ny == 1 else th, 0 if nx == 1 else tw))
            if best is None or key[:2] < best[:2]:
                best = key
    if best is None:  # tiny budget: square tiles of the allowed area
        side = max(multiple_of, int(max_px**0.5) // multiple_of * multiple_of)
        return side
    return best[2]


# --- the session --------------------------------------------------------------------------------

class Deblurrer:
    """A loaded network plus how to run it (device, precision, tiles): one per CLI run.

    Args:
        loaded: from :func:`dpcli.models.loading.load_model`.
        device: ``auto`` | ``cpu`` | ``cuda`` | ...
        precision: ``fp32`` | ``bf16`` (CPU AVX-512/AMX, CUDA) | ``fp16`` (CUDA).
        tile: tile side in px; 0 = one full-frame pass; None = automatic: one full-frame pass when
            it fits the memory budget (2 GiB peak RSS, ``DPDEBLUR_MEMORY_GIB``), else the
            fewest rectangular tiles that do (see :func:`plan_tiles`).
        tile_overlap: overlap in px; None = the model's default.
        channels_last: channels-last memory format (None = on for CPU).
    """

    def __init__(self, loaded: LoadedModel, *, device: str = "auto", precision: str = "fp32",
                 tile: int | None = None, tile_overlap: int | None = None,
                 channels_last: bool | None = None) -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        precision_dtype(precision)
        if precision != "fp32" and not loaded.supports_bf16:
            raise DpError(f"--precision {precision}: {loaded.arch} runs in fp32 only")
        self.precision = precision
        self.tile = tile
        self.overlap = loaded.tiling.resolve(tile, tile_overlap)[1]
        self.channels_last = (self.device.type == "cpu") if channels_last is None else channels_last
        module = loaded.module.to(self.device).eval()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module

    @property
    def task(self) -> str:
        return self.loaded.task

    def tile_for(self, h: int, w: int, in_channels: int = 6, out_channels: int = 3) -> int | tuple[int, int]:
        """The tiles used for an (h, w) image: the user's ``tile``, else the memory plan."""
        if self.tile is not None:
            return self.tile
        # feature channels a pass holds per pixel, as the planner counts them (wide FFNs: more than cfg.width)
        width = int(getattr(self.loaded.module, "memory_width", 0) or getattr(self.loaded.module.cfg, "width", 64))
        frame_bytes = 4 * h * w * (in_channels + out_channels + 1)  # float32 views, output, blend weights
        plan = plan_tiles(h, w, tile_budget_px(width, self.precision, frame_bytes=frame_bytes), self.overlap,
                          self.loaded.multiple_of)
        floor = int(getattr(self.loaded.module, "min_tile", 0))  # smaller tiles change the function too much
        if floor and plan and min(plan if isinstance(plan, tuple) else (plan, plan)) < floor:
            plan = floor
        return plan

    def _run(self, views: list[torch.Tensor], progress: Callable[[int, int], None] | None) -> torch.Tensor:
        """views: (N, C, H, W) RGB or grey tensors of equal shape -> (N, 3 | 1, H, W) float32 CPU.

        Channel order and grey -> RGB are handled tile by tile, so no full-frame copy is made.
        """
        shape = views[0].shape
        for v in views[1:]:
            if v.shape != shape:
                raise InputError(f"the views differ in shape: {tuple(shape)} vs {tuple(v.shape)}")
        grey = shape[1] == 1
        if grey:  # grey data (e.g. the raw DP green channel): the networks want 3 channels
            views = [v.expand(-1, 3, -1, -1) for v in views]
        bgr = self.loaded.colour_order.upper() == "BGR"
        module = self.module
        # the authors' checkpoints want BGR: reverse each view's channels going in, the output's coming out
        order = [3 * k + c for k in range(len(views)) for c in (2, 1, 0)]

        def net(t: torch.Tensor) -> torch.Tensor:
            y = module(t[:, order] if bgr else t)
            y = y.flip(1) if bgr else y
            return y.mean(dim=1, keepdim=True) if grey else y

        h, w = shape[-2:]
        tile = self.tile_for(h, w, 3 * len(views) if not grey else len(views), 1 if grey else 3)
        release_freed_memory()
        try:
            return run_tiled(net, views, tile=tile, overlap=self.overlap, multiple_of=self.loaded.multiple_of,
                             device=self.device, precision=self.precision, channels_last=self.channels_last,
                             out_channels=1 if grey else 3, progress=progress)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise DpError(f"out of memory; use a smaller --tile (now {tile})") from exc

    def _post(self, out: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """The post stage of registered weights: the input's local mean restored (``keep_mean_px``)."""
        if self.loaded.keep_mean_px > 0:
            from dpcli.optics.windows import restore_local_mean

            out = restore_local_mean(out, reference.float().expand_as(out), self.loaded.keep_mean_px)
        return out.clamp_(0, 1)

    def deblur_pair(self, left: Any, right: Any, progress=None) -> Any:
        self._need("deblur_pair")
        (lt, layout), (rt, _) = _to_nchw(left, "left"), _to_nchw(right, "right")
        return layout.restore(self._post(self._run([lt, rt], progress), (lt.float() + rt.float()) / 2))

    def deblur_image(self, image: Any, progress=None) -> Any:
        self._need("deblur_single")
        t, layout = _to_nchw(image, "image")
        return layout.restore(self._post(self._run([t], progress), t))

    def estimate_coc(self, left: Any, right: Any, progress=None) -> Any:
        """Signed COC radius in px, one channel (mean of the network's three): (H, W) / (1, H, W)."""
        self._need("coc")
        (lt, layout), (rt, _) = _to_nchw(left, "left"), _to_nchw(right, "right")
        coc = self._run([lt, rt], progress).mean(dim=1, keepdim=True)
        if layout.layout == "HWC":
            layout = _Layout(layout.numpy, "HW", layout.dtype)
        return layout.restore(coc)

    def _need(self, task: str) -> None:
        if self.task != task:
            raise ModelError(f"{self.loaded.arch} is a {self.task} network; this call needs {task}")


_SESSIONS: dict[tuple, Deblurrer] = {}


def load_session(model: str, task: str, *, weights: str | Path | None = None, arch: str | None = None,
                 device: str = "auto", precision: str = "fp32", tile: int | None = None,
                 tile_overlap: int | None = None, channels_last: bool | None = None) -> Deblurrer:
    """A cached :class:`Deblurrer` (loading a network once per set of arguments)."""
    key = (model, task, str(weights) if weights else None, arch, device, precision, tile, tile_overlap,
           channels_last)
    if key not in _SESSIONS:
        if len(_SESSIONS) > 4:
            _SESSIONS.clear()
        loaded = load_model(model, task=task, weights=weights, arch=arch)
        _SESSIONS[key] = Deblurrer(loaded, device=device, precision=precision, tile=tile,
                                   tile_overlap=tile_overlap, channels_last=channels_last)
    return _SESSIONS[key]


def deblur_pair(left: Any, right: Any, model: str | None = None, *, weights: str | Path | None = None,
                arch: str | None = None, device: str = "auto", precision: str = "fp32",
                tile: int | None = None, tile_overlap: int | None = None,
                channels_last: bool | None = None) -> Any:
    """All-in-focus image from a DP pair (BaMBNet by default).

    Args:
        left, right: the two views, same shape (see module docstring for layouts).
        model: a family (``bambnet``, ``restormer``, ``lakdnet``...), an architecture or ``arch.tag``
            (``dpdeblur models``); None: the family of ``weights`` (read from the file), else bambnet.
        weights: checkpoint file (our safetensors, or the authors' .pth); None = registered weights.
        arch: needed when a file fits several architectures (BaMBNet deblur vs COC).
        device, precision, tile, tile_overlap, channels_last: see :class:`Deblurrer`.
    Returns: the AiF image, same type and layout as ``left``, values in [0, 1].
    Raises:
        ModelError: no weights / wrong or ambiguous architecture; InputError: bad arrays.
    """
    session = load_session(model or ("auto" if weights else "bambnet"), "deblur_pair", weights=weights, arch=arch,
                           device=device, precision=precision, tile=tile, tile_overlap=tile_overlap,
                           channels_last=channels_last)
    return session.deblur_pair(left, right)


def deblur_image(image: Any, model: str | None = None, *, weights: str | Path | None = None,
                 arch: str | None = None, device: str = "auto", precision: str = "fp32",
                 tile: int | None = None, tile_overlap: int | None = None,
                 channels_last: bool | None = None) -> Any:
    """All-in-focus image from one blurred image (DefocusGAN by default, else the family of
    ``weights``); as :func:`deblur_pair`."""
    session = load_session(model or ("auto" if weights else "defocusgan"), "deblur_single", weights=weights,
                           arch=arch, device=device, precision=precision, tile=tile, tile_overlap=tile_overlap,
                           channels_last=channels_last)
    return session.deblur_image(image)


def estimate_coc(left: Any, right: Any, model: str = "bambnet", *, weights: str | Path | None = None,
                 arch: str | None = None, device: str = "auto", precision: str = "fp32",
                 tile: int | None = None, tile_overlap: int | None = None,
                 channels_last: bool | None = None) -> Any:
    """Signed COC / defocus radius map in px (CONVENTIONS.md) from a DP pair.

    ``model``: ``bambnet`` (COC net) or ``defocusgan`` (defocus-map estimator). Returns (H, W)
    for numpy/HW inputs, (1, H, W) for (C, H, W), (N, 1, H, W) for batches.
    """
    session = load_session(model, "coc", weights=weights, arch=arch, device=device, precision=precision,
                           tile=tile, tile_overlap=tile_overlap, channels_last=channels_last)
    return session.estimate_coc(left, right)


def deblur(left: np.ndarray, right: np.ndarray | None = None, *, srgb: bool = True, method: str = "auto",
           kernels: tuple | None = None, swap_lr: bool | None = None, focus: str = "front",
           defocus: bool = False, **options: Any):
    """Deblur as ``dpdeblur run`` does: a DP pair (or one image with ``right=None``) through the
    method named, or with ``method="auto"`` the best measured for the data's domain; a pair's
    L/R order is detected (``swap_lr`` forces it) and calibration ``kernels`` (left, right) are
    put in our order from their own shape.

    Args:
        left, right: (C, H, W) float32 numpy views in [0, 1]; ``srgb`` says how they are encoded.
        options: method options (``device``, ``precision``, ``tile``, ``weights`` ...).
    Returns:
        :class:`dpcli.methods.MethodOutput` (``image`` in the input's encoding, ``defocus`` map
        with ``defocus=True``, ``info`` with ``method`` and ``orientation``).
    Raises:
        InputError: nothing shipped for this kind of data, or inputs the method cannot take.
    """
    from dpcli.methods import default_method, get_method, item_domain, orient
    from dpcli.optics.orientation import orient_kernels, orient_views

    domain = item_domain(left.shape[0], srgb)
    if method == "auto":
        chosen = default_method(domain, right is not None)
        if chosen is None:
            raise InputError(f"no method for {'DP pairs' if right is not None else 'single images'} of the "
                             f"{domain} domain is shipped yet")
        method = chosen.name
    m = get_method(method, **options)
    info: dict = {"method": m.name}
    if right is not None:
        o = orient(left, right, srgb=srgb, focus=focus, user=swap_lr)
        left, right, _ = orient_views(left, right, o)
        info["orientation"] = o.describe()
        if kernels is not None:
            kernels = orient_kernels(*kernels, focus="back" if focus == "back" else "front")[:2]
    result = m.deblur(left, right, srgb=srgb, kernels=kernels, defocus=defocus, focus=focus)
    result.info.update(info)
    return result


def run_official_input(loaded: LoadedModel, official_input: torch.Tensor) -> torch.Tensor:
    """Feed what the authors' forward received (recipes LRR, LR, CC) to our module.

    Channels past our input width only built the authors' training masks, which are off at
    inference; they are passed as the (unused) ``coc`` guide. No colour swap: for parity tests.
    """
    n = loaded.in_chans
    extra = official_input[:, n:] if official_input.shape[1] > n else None
    with torch.inference_mode():
        return loaded.module(official_input[:, :n], coc=extra, guide_weight=0.0)
