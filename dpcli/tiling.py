"""Tiled inference: any image-to-image network on images of any size in bounded memory.

The image is (virtually) padded on the bottom/right to the network's size multiple, cut into
tiles aligned to that multiple (so pooling/upsampling phases match a full-frame pass), the tiles
run in batches on the device, and their outputs are blended back with raised-cosine ramps over
the overlap (weight 0 on its outer quarter, where a tile's own border effects live; so a network
whose receptive field is inside that quarter reproduces the full-frame result to float
rounding). Blending is an incremental weighted mean (``out += w / W * (y - out)``), so a
constant result stays bit-exactly constant and no final division over the full frame is needed.
Only the input, the float32 CPU output and one (H, W) weight-sum map scale with image size.

Networks with global average pooling (RCAB channel attention) see other statistics in a tile
than in the full frame; :func:`use_local_pooling` swaps their ``nn.AdaptiveAvgPool2d(1)`` for
a sliding-window mean over a fixed window (NAFNet's test-time local converter, TLC): a pixel
whose window lies inside its tile then sees the same statistics tiled or not. On real Pixel 4
content with paper-size BaMBNet (random init), 768/128 tiles, window 512, it cut the mean
tiled-vs-full-frame difference 6.5x (2.2e-5 -> 3.3e-6); see benchmarks/bench_tiling.py.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpcli.device import autocast, precision_dtype, resolve_device
from dpcli.errors import DpError, ModelError
from dpcli.optics.windows import cosine_ramp, tent_weights  # noqa: F401  (tent_weights: re-exported)

__all__ = [
    "TilingSpec",
    "SizeRequirements",
    "run_tiled",
    "run_model_tiled",
    "tile_grid",
    "blend_ramp",
    "tent_weights",
    "pad_to_multiple",
    "LocalAvgPool2d",
    "use_local_pooling",
    "replace_global_pooling",
    "effective_receptive_field",
    "DEFAULT_TILE",
    "DEFAULT_OVERLAP",
    "plan_tiles",
    "tile_budget_px",
    "MEMORY_BUDGET_GIB",
]

# From benchmarks/bench_tiling.py on 2 CPU cores with paper-size BaMBNet: 768 px tiles cost the
# least time per output pixel of 256-768 (small tiles pay per-layer overhead at the /16 U-Net levels
# and more overlap) and peak at 1.8 GiB RSS for a 24 MP pair (1024 px would pass 3 GiB); overlap
# 128 = 2 x the effective receptive-field radius (62 px holds 99 % of the input gradient).
DEFAULT_TILE = 768
DEFAULT_OVERLAP = 128

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class SizeRequirements:
    """What input sizes a network accepts (spandrel's ``SizeRequirements``)."""

    minimum: int = 0
    multiple_of: int = 1

    def padded(self, size: int) -> int:
        """Smallest accepted size >= ``size``."""
        size = max(size, self.minimum, 1)
        return -(-size // self.multiple_of) * self.multiple_of


@dataclass(frozen=True)
class TilingSpec:
    """Facts a model carries for the tiler (read them, don't hard-code constants).

    Attributes:
        multiple_of: height and width the network needs (16 for BaMBNet / DefocusGAN).
        tile: default tile side in px (0 = full frame).
        overlap: default overlap between neighbouring tiles in px.
        receptive_field: effective receptive-field radius in px (99 % of the gradient mass), if
            measured; the recommended overlap is twice this (the blend ramps cross mid-overlap).
        pool_window: training patch size of a network with global pooling; the local-pooling
            remedy averages over this window. None for networks without global pooling.
    """

    multiple_of: int = 16
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    receptive_field: int | None = None
    pool_window: int | None = None

    @property
    def size(self) -> SizeRequirements:
        return SizeRequirements(multiple_of=self.multiple_of)

    def recommended_overlap(self) -> int:
        """2 x receptive-field radius rounded up to the size multiple (``overlap`` if unknown)."""
        if self.receptive_field is None:
            return self.overlap
        return _round_up(2 * self.receptive_field, self.multiple_of)

    def resolve(self, tile: int | None = None, overlap: int | None = None) -> tuple[int, int]:
        """User values (``--tile``, ``--tile-overlap``) where given, else this spec's defaults."""
        return (self.tile if tile is None else tile), (self.overlap if overlap is None else overlap)

    def with_receptive_field(self, radius: int) -> "TilingSpec":
        spec = replace(self, receptive_field=int(radius))
        return replace(spec, overlap=spec.recommended_overlap())


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _pad_mode(size: int, pad: int) -> str:
    # Reflect needs pad < size; tiny images (e.g. 1x7) fall back to replicate.
    return "reflect" if pad < size else "replicate"


def pad_to_multiple(image: Tensor, multiple_of: int) -> Tensor:
    """Pad (N, C, H, W) on the bottom/right to multiples of ``multiple_of`` (reflect, else replicate).

    Returns:
        (N, C, Hp, Wp) tensor; ``image`` itself when nothing needs padding.
    """
    h, w = image.shape[-2:]
    ph, pw = _round_up(h, multiple_of) - h, _round_up(w, multiple_of) - w
    return _pad_br(image, ph, pw)


def _pad_br(x: Tensor, ph: int, pw: int) -> Tensor:
    """Bottom/right padding, each axis with its own mode (reflect where possible)."""
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode=_pad_mode(x.shape[-2], ph))
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode=_pad_mode(x.shape[-1], pw))
    return x


def tile_grid(size: int, tile: int, overlap: int, multiple_of: int) -> tuple[list[int], int]:
    """Tile starts along one axis of a padded length ``size`` (a multiple of ``multiple_of``).

    Starts are multiples of ``multiple_of`` so every tile sees the same pooling phase as a
    full-frame pass; the last tile ends at ``size``. Returns (starts, tile length).
    """
    t = min(_round_up(max(tile, multiple_of), multiple_of), size)
    if t >= size:
        return [0], size
    stride = max(multiple_of, ((t - overlap) // multiple_of) * multiple_of)
    starts = list(range(0, size - t, stride)) + [size - t]
    return starts, t


def blend_ramp(length: int, overlap: int, lead: bool, trail: bool) -> Tensor:
    """1-D blend weights of one tile across ``overlap`` px at each interior edge.

    Over an overlap the weight is 0 for its outer quarter (pixels that see the tile edge, i.e.
    the zero padding of the convolutions), rises as a raised cosine over its middle half and is
    1 after; the neighbour's ramp is the mirror image, so the two sum to 1. ``lead``/``trail``
    say whether the first/last edge lies inside the image (needs a ramp) or on its border.
    """
    w = torch.ones(length, dtype=torch.float32)
    overlap = min(overlap, length)
    margin = overlap // 4
    ramp = overlap - 2 * margin
    if overlap <= 0:
        return w
    prof = torch.ones(overlap, dtype=torch.float64)
    prof[:margin] = 0.0
    prof[margin:margin + ramp] = cosine_ramp(ramp, offset=0.5, dtype=torch.float64)
    prof = prof.float()
    if lead:
        w[:overlap] *= prof
    if trail:
        w[length - overlap:] *= prof.flip(0)
    return w


def _check_image(image: Tensor) -> None:
    if not isinstance(image, Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise DpError(f"expected an image batch of shape (N, C, H, W), got {shape}")
    if image.shape[-1] < 1 or image.shape[-2] < 1 or image.shape[0] < 1:
        raise DpError(f"empty image (shape {tuple(image.shape)}): nothing to process")


def run_tiled(
    fn: Callable[[Tensor], Tensor],
    image: Tensor | Sequence[Tensor],
    *,
    tile: int | tuple[int, int] | None,
    overlap: int,
    multiple_of: int = 16,
    batch_size: int = 1,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    out_channels: int | None = None,
    channels_last: bool = False,
    progress: ProgressFn | None = None,
) -> Tensor:
    """Run an image-to-image network tile by tile and reassemble the full-size result.

    Args:
        fn: network, (B, C, h, w) on ``device`` -> (B, C_out, h, w); h, w multiples of
            ``multiple_of``. Called under ``torch.inference_mode`` and the precision's autocast.
        image: (N, C, H, W) input, any size >= 1x1; may stay on the CPU (only tiles move). A
            sequence of (N, C_k, H, W) tensors (e.g. the two DP views) is concatenated along C
            tile by tile, so no full-frame copy of the joined input is ever made.
        tile: tile side in px (rounded up to ``multiple_of``); 0 or None = one full-frame pass;
            a (height, width) pair gives rectangular tiles (0 on an axis = that axis whole).
        overlap: overlap between neighbouring tiles in px; blend ramps span it.
        multiple_of: size multiple the network needs; inputs are padded (reflect, or replicate
            where the image is too small to reflect) on the bottom/right and cropped back.
        batch_size: tiles per forward call.
        device: where ``fn`` runs (None = where ``image`` is; ``"auto"`` = CUDA/MPS/CPU).
        precision: ``fp32`` | ``bf16`` | ``fp16`` (autocast via :func:`dpcli.device.autocast`).
        out_channels: C_out if known (else read from the first tile's output).
        channels_last: feed tiles in channels-last memory format.
        progress: called as ``progress(done_tiles, total_tiles)`` after each batch.

    Returns:
        (N, C_out, H, W) float32 tensor on the CPU.

    Raises:
        DpError: bad shapes or arguments; ModelError: the network changed the spatial size.
    """
    views = list(image) if isinstance(image, (list, tuple)) else [image]
    for view in views:
        _check_image(view)
        if view.shape[0] != views[0].shape[0] or view.shape[-2:] != views[0].shape[-2:]:
            raise DpError(f"the views differ in size: {tuple(views[0].shape)} vs {tuple(view.shape)}")
    tile_h, tile_w = tile if isinstance(tile, (tuple, list)) else (tile, tile)
    if min(tile_h or 0, tile_w or 0) < 0:
        raise DpError(f"--tile {tile}: must be 0 (one full-frame pass) or a positive size in px")
    if overlap < 0:
        raise DpError(f"--tile-overlap {overlap}: must be 0 or more px")
    if batch_size < 1 or multiple_of < 1:
        raise DpError(f"tiles per batch ({batch_size}) and the size multiple ({multiple_of}) must be at least 1")
    dev = resolve_device(device) if isinstance(device, str) else (device or views[0].device)
    precision_dtype(precision)  # validate early
    n, _, h, w = views[0].shape
    hp, wp = _round_up(h, multiple_of), _round_up(w, multiple_of)
    ys, th = tile_grid(hp, tile_h, overlap, multiple_of) if tile_h else ([0], hp)
    xs, tw = tile_grid(wp, tile_w, overlap, multiple_of) if tile_w else ([0], wp)
    jobs = [(i, y, x) for i in range(n) for y in ys for x in xs]
    # Ramps only as wide as the actual overlap of neighbours, so they never reach past them.
    ramp_y = min(overlap, th - (ys[1] - ys[0])) if len(ys) > 1 else 0
    ramp_x = min(overlap, tw - (xs[1] - xs[0])) if len(xs) > 1 else 0

    # full-frame buffers first when their size is known: allocated before any tile's activations,
    # they sit below them in the heap and the tiles' memory is reused without fragmentation
    out = torch.zeros(n, out_channels, h, w, dtype=torch.float32) if out_channels else None
    wsum = torch.zeros(n, h, w, dtype=torch.float32) if len(ys) * len(xs) > 1 else None
    done = 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        tiles = torch.stack([torch.cat([_extract(v[i], y, x, th, tw, h, w) for v in views]) for i, y, x in batch])
        result = _forward(fn, tiles, dev, precision, channels_last)
        if (result.ndim != 4 or result.shape[-2:] != tiles.shape[-2:] or result.shape[0] != len(batch)
                or (out is not None and result.shape[1] != out.shape[1])):
            raise ModelError(
                f"network returned shape {tuple(result.shape)} for tiles {tuple(tiles.shape)}: "
                "run_tiled needs a same-size image-to-image network")
        if out is None:
            c_out = out_channels or result.shape[1]
            out = torch.zeros(n, c_out, h, w, dtype=torch.float32)
        for k, (i, y, x) in enumerate(batch):
            _accumulate(out[i], None if wsum is None else wsum[i], result[k], y, x, h, w, ys, xs, ramp_y, ramp_x)
        done += len(batch)
        if progress is not None:
            progress(done, len(jobs))
    assert out is not None
    return out


def _extract(img: Tensor, y: int, x: int, th: int, tw: int, h: int, w: int) -> Tensor:
    """Tile (C, th, tw) of the virtually bottom/right-padded image, padded here if it overhangs.

    Equals ``pad_to_multiple(image)[..., y:y+th, x:x+tw]`` without padding the whole frame.
    """
    ph, pw = max(0, y + th - h), max(0, x + tw - w)
    if not (ph or pw):
        return img[:, y:y + th, x:x + tw]
    # Reflection needs ph rows (pw columns) before the border: read from early enough, drop after.
    y0 = min(y, max(0, h - 1 - ph)) if ph else y
    x0 = min(x, max(0, w - 1 - pw)) if pw else x
    crop = _pad_br(img[:, y0:min(y + th, h), x0:min(x + tw, w)].unsqueeze(0), ph, pw)[0]
    return crop[:, y - y0:, x - x0:]


def _forward(fn: Callable[[Tensor], Tensor], tiles: Tensor, dev: torch.device, precision: str,
             channels_last: bool) -> Tensor:
    x = tiles.to(dev, dtype=torch.float32, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(dev, precision):
        y = fn(x)
    return y.to("cpu", dtype=torch.float32).contiguous()


def _accumulate(out: Tensor, wsum: Tensor | None, res: Tensor, y: int, x: int, h: int, w: int,
                ys: Sequence[int], xs: Sequence[int], ramp_y: int, ramp_x: int) -> None:
    """Blend one tile result (C, th, tw) into ``out`` (C, H, W) as an incremental weighted mean."""
    hh, ww = min(res.shape[-2], h - y), min(res.shape[-1], w - x)
    core = res[:, :hh, :ww]
    if wsum is None:  # single tile: nothing to blend
        out[:, y:y + hh, x:x + ww] = core
        return
    wy = blend_ramp(res.shape[-2], ramp_y, lead=y > ys[0], trail=y < ys[-1])[:hh]
    wx = blend_ramp(res.shape[-1], ramp_x, lead=x > xs[0], trail=x < xs[-1])[:ww]
    wt = wy[:, None] * wx[None, :]
    ws = wsum[y:y + hh, x:x + ww]
    ws += wt
    o = out[:, y:y + hh, x:x + ww]
    # out += w / W_new * (y - out): exact for the first tile (w / w == 1) and for equal values;
    # 0 where no weight has arrived yet (a tile's zero margin).
    factor = torch.where(ws > 0, wt / ws.clamp_min(1e-30), torch.zeros((), dtype=ws.dtype))
    o.add_((core - o).mul_(factor))


def run_model_tiled(
    model: nn.Module,
    image: Tensor,
    *,
    spec: TilingSpec | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    local_pooling: bool | int = False,
    **kwargs,
) -> Tensor:
    """:func:`run_tiled` with tile/overlap/multiple taken from the model's ``tiling`` spec.

    ``tile``/``overlap`` override the spec (``--tile``, ``--tile-overlap``); ``local_pooling``
    (True or a window in px) swaps global pooling for a sliding window while it runs.
    """
    spec = spec or getattr(model, "tiling", None) or TilingSpec()
    tile, overlap = spec.resolve(tile, overlap)
    window = local_pooling if not isinstance(local_pooling, bool) else spec.pool_window
    ctx = use_local_pooling(model, window) if local_pooling and window else contextlib.nullcontext()
    with ctx:
        return run_tiled(model, image, tile=tile, overlap=overlap, multiple_of=spec.multiple_of, **kwargs)


# --------------------------------------------------------------------------------------------
# Local pooling (test-time local converter, TLC: Chu et al., "Improving Image Restoration by
# Revisiting Global Information Aggregation", ECCV 2022; used by NAFNet).


class LocalAvgPool2d(nn.Module):
    """Sliding-window mean over ``window`` input px, same size out as in (replicate at borders).

    Stands in for ``nn.AdaptiveAvgPool2d(1)`` at test time. The window is given in pixels of
    the network input; ``input_hw`` (set by :func:`use_local_pooling`'s hook) scales it to this
    feature map's resolution, so one window serves every U-Net level. Where the window covers
    the whole map this equals global pooling exactly.

    Shapes: (N, C, h, w) -> (N, C, h, w), or (N, C, 1, 1) when the window covers the map.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = int(window)
        self.input_hw: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return f"window={self.window}"

    def _kernel(self, h: int, w: int) -> tuple[int, int]:
        if self.input_hw is None:
            return min(self.window, h), min(self.window, w)
        ih, iw = self.input_hw
        kh = max(1, round(self.window * h / ih))
        kw = max(1, round(self.window * w / iw))
        return min(kh, h), min(kw, w)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        kh, kw = self._kernel(h, w)
        if kh == h and kw == w:
            return x.mean(dim=(-2, -1), keepdim=True)
        # Box sums from cumulative sums (O(1) per pixel whatever the window); float64 because
        # differences of large running sums lose digits in float32.
        s = F.pad(x.double(), (1, 0, 1, 0)).cumsum_(-2).cumsum_(-1)
        box = s[..., kh:, kw:] - s[..., :-kh, kw:] - s[..., kh:, :-kw] + s[..., :-kh, :-kw]
        box = (box / (kh * kw)).to(x.dtype)
        top, left = (kh - 1) // 2, (kw - 1) // 2
        return F.pad(box, (left, kw - 1 - left, top, kh - 1 - top), mode="replicate")


def _is_global_avg_pool(module: nn.Module) -> bool:
    if not isinstance(module, nn.AdaptiveAvgPool2d):
        return False
    size = module.output_size
    return size == 1 or tuple(size) == (1, 1)


def replace_global_pooling(model: nn.Module, window: int) -> Callable[[], None]:
    """Swap every ``nn.AdaptiveAvgPool2d(1)`` in ``model`` for :class:`LocalAvgPool2d`.

    Returns a function that restores the original modules. Functional pooling calls
    (``x.mean(...)``, ``F.adaptive_avg_pool2d``) cannot be swapped: build models with modules.

    Raises:
        ModelError: the model has no global average pooling module.
    """
    swapped: list[tuple[nn.Module, str, nn.Module, LocalAvgPool2d]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _is_global_avg_pool(child):
                local = LocalAvgPool2d(window)
                setattr(parent, name, local)
                swapped.append((parent, name, child, local))
    if not swapped:
        raise ModelError(f"{type(model).__name__} has no nn.AdaptiveAvgPool2d(1) to replace")
    pools = [s[3] for s in swapped]

    def _record_input(_module: nn.Module, args: tuple) -> None:
        shape = args[0].shape if args and isinstance(args[0], Tensor) else None
        for p in pools:
            p.input_hw = (int(shape[-2]), int(shape[-1])) if shape is not None else None

    handle = model.register_forward_pre_hook(_record_input)

    def restore() -> None:
        handle.remove()
        for parent, name, original, _ in swapped:
            setattr(parent, name, original)

    return restore


@contextlib.contextmanager
def use_local_pooling(model: nn.Module, window: int) -> Iterator[nn.Module]:
    """Context manager: ``model`` pools over ``window`` px (TLC) inside, globally again after.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1))
        >>> with use_local_pooling(net, 8):
        ...     net(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 4, 32, 32])
    """
    restore = replace_global_pooling(model, window)
    try:
        yield model
    finally:
        restore()


# --------------------------------------------------------------------------------------------


def effective_receptive_field(
    fn: Callable[[Tensor], Tensor],
    in_channels: int,
    *,
    size: int = 256,
    mass: float = 0.99,
    seed: int = 0,
) -> int:
    """Radius (px) of the square around an output pixel holding ``mass`` of its input gradient.

    Measured on a uniform-noise input of ``size`` x ``size``; a data-driven overlap choice
    (:meth:`TilingSpec.with_receptive_field`). Runs one forward + backward on the CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, in_channels, size, size, generator=gen, requires_grad=True)
    y = fn(x)
    c = size // 2
    y[..., c, c].abs().sum().backward()
    g = x.grad.abs().sum(dim=(0, 1)).double()
    total = float(g.sum())
    if total == 0.0:
        return 0
    for r in range(size // 2 + 1):
        if float(g[max(c - r, 0):c + r + 1, max(c - r, 0):c + r + 1].sum()) >= mass * total:
            return r
    return size // 2


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
    gib = budget_gib or float(os.environ.get("DPDEBLUR_MEMORY_GIB", MEMORY_BUDGET_GIB))
    per_px = _BYTES_PER_PX_PER_CH.get(precision, 26.0) * width
    return max(64 * 64, int(((gib - _RESERVED_GIB) * 2**30 - frame_bytes) / per_px))


def plan_tiles(h: int, w: int, max_px: int, overlap: int, multiple_of: int = 16) -> int | tuple[int, int]:
    """Rectangular tiles covering (h, w) with the least total work and area <= ``max_px``.

    Returns 0 (one full-frame pass) when the whole image fits, else (tile_h, tile_w) where 0
    means "whole axis". E.g. 1680x1120 fp32 (~0.8 MP allowed) -> 3 tiles of 1120x624.
    """
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
