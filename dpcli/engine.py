"""The inference engine: loaded networks run on arrays of any size (below :mod:`dpcli.methods`).

One home for what every network call shares: the session (:class:`Deblurrer`: a loaded network
with its device, precision, tiles, BGR swap and grey expansion; a plain callable in the sense of
spandrel's ``ImageModelDescriptor.__call__``: pad, forward, tile, clamp, crop) and the session cache
(:func:`load_session`). What runs after the network (the post steps a weights entry names: local
mean kept, focus gate, endorsement, ...) belongs to the methods (:mod:`dpcli.methods.post`); a
caller hands it in as ``post``. The numpy <-> torch boundary (:func:`to_tensor`, :func:`to_numpy`,
:func:`to_nchw`, :class:`Layout`, :func:`encode`) lives in :mod:`dpcli.arrays` and is re-exported
here. The tile plan lives in :mod:`dpcli.tiling` (:func:`dpcli.tiling.plan_tiles`). The Python API
(:mod:`dpcli.api`) and the methods (:mod:`dpcli.methods`) call this module; it imports neither.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from dpcli.arrays import Layout, encode, to_nchw, to_numpy, to_tensor
from dpcli.device import precision_dtype, release_freed_memory, resolve_device, resolve_precision
from dpcli.errors import DpError, InputError, ModelError
from dpcli.tiling import plan_tiles, run_tiled, tile_budget_px
from dpcli.timing import stage

if TYPE_CHECKING:  # the models are imported where a session is made, so the engine stays light
    from dpcli.models.loading import LoadedModel

__all__ = ["Deblurrer", "Layout", "encode", "load_session", "named_session", "run_official_input", "to_nchw",
           "to_numpy", "to_tensor"]

# what runs after the network (dpcli.methods.post.Post): (raw output, the input views) -> output in [0, 1]
PostFn = Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor]


# --- the session --------------------------------------------------------------------------------

class Deblurrer:
    """A loaded network plus how to run it (device, precision, tiles): one per CLI run.

    ``session(views)`` is the network on (N, C, H, W) views of any size, clamped to [0, 1];
    :meth:`run` the same unclamped (what post steps read); :meth:`deblur_pair`,
    :meth:`deblur_image`, :meth:`estimate_coc`, :meth:`estimate_blur` take and give the caller's
    arrays (docs/CONVENTIONS.md layouts).

    Args:
        loaded: from :func:`dpcli.models.loading.load_model`.
        device: ``auto`` | ``cpu`` | ``cuda`` | ...
        precision: ``fp32`` | ``bf16`` (CPU AVX-512/AMX, CUDA) | ``fp16`` (CUDA) | ``auto`` (fp32 here;
            a method resolves it per network, :func:`dpcli.methods.network.bf16_harmless`).
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
        precision = resolve_precision(precision, self.device)  # auto: fp32 here (methods resolve it per network)
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

    def __call__(self, views: list[torch.Tensor], progress: Callable[[int, int], None] | None = None
                 ) -> torch.Tensor:
        """The network on ``views`` ((N, C, H, W) tensors of equal shape), clamped to [0, 1]."""
        return self.run(views, progress).clamp_(0, 1)

    def run(self, views: list[torch.Tensor], progress: Callable[[int, int], None] | None = None,
            out_channels: int | None = None) -> torch.Tensor:
        """views: (N, C, H, W) RGB or grey tensors of equal shape -> (N, out_channels, H, W) float32
        CPU, as the network gives it (not clamped); by default 3 channels, or 1 for grey views.

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
        out_channels = out_channels or (1 if grey else 3)
        tile = self.tile_for(h, w, 3 * len(views) if not grey else len(views), out_channels)
        release_freed_memory()
        try:
            with stage(f"network {Path(self.loaded.source).name or self.loaded.arch}"):
                return run_tiled(net, views, tile=tile, overlap=self.overlap, multiple_of=self.loaded.multiple_of,
                                 device=self.device, precision=self.precision, channels_last=self.channels_last,
                                 out_channels=out_channels, progress=progress)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise DpError(f"out of memory; use a smaller --tile (now {tile})") from exc

    def blur_map(self, image: torch.Tensor, progress=None) -> torch.Tensor:
        """(N, C, H, W) image in sRGB values -> (N, 1, H, W): a BlurNet's probability that each pixel
        is visibly out of focus."""
        self._need("blur")
        return self.run([image], progress, out_channels=1)

    def estimate_blur(self, image: Any, progress=None) -> Any:
        """Where one image is visibly out of focus (a BlurNet's probability), one channel: (H, W) /
        (1, H, W)."""
        t, layout = to_nchw(image, "image")
        if layout.layout == "HWC":
            layout = Layout(layout.numpy, "HW", layout.dtype)
        return layout.restore(self.blur_map(t, progress))

    def deblur_pair(self, left: Any, right: Any, progress=None, post: PostFn | None = None) -> Any:
        """All-in-focus image of a DP pair in the caller's type and layout. ``post``: what runs on the
        network's raw output (with the input views) instead of the plain clamp to [0, 1]: the post
        steps of registered weights (:func:`dpcli.methods.post.post_for`)."""
        self._need("deblur_pair")
        (lt, layout), (rt, _) = to_nchw(left, "left"), to_nchw(right, "right")
        return layout.restore(self._finish(self.run([lt, rt], progress), [lt, rt], post))

    def deblur_image(self, image: Any, progress=None, post: PostFn | None = None) -> Any:
        """All-in-focus image of one photo; as :meth:`deblur_pair`."""
        self._need("deblur_single")
        t, layout = to_nchw(image, "image")
        return layout.restore(self._finish(self.run([t], progress), [t], post))

    @staticmethod
    def _finish(out: torch.Tensor, views: list[torch.Tensor], post: PostFn | None) -> torch.Tensor:
        return out.clamp_(0, 1) if post is None else post(out, views)

    def estimate_coc(self, left: Any, right: Any, progress=None) -> Any:
        """Signed COC radius in px, one channel (mean of the network's three): (H, W) / (1, H, W)."""
        self._need("coc")
        (lt, layout), (rt, _) = to_nchw(left, "left"), to_nchw(right, "right")
        coc = self.run([lt, rt], progress).mean(dim=1, keepdim=True)
        if layout.layout == "HWC":
            layout = Layout(layout.numpy, "HW", layout.dtype)
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
        from dpcli.models.loading import load_model

        if len(_SESSIONS) > 4:
            _SESSIONS.clear()
        with stage("load weights"):
            loaded = load_model(model, task=task, weights=weights, arch=arch)
        _SESSIONS[key] = Deblurrer(loaded, device=device, precision=precision, tile=tile,
                                   tile_overlap=tile_overlap, channels_last=channels_last)
    return _SESSIONS[key]


def named_session(name: str, task: str, **options: Any) -> Deblurrer:
    """The session of registered weights (``arch.tag``) or a weights file, for ``task`` (a post
    step's second network: a BlurNet, a second opinion)."""
    if Path(name).suffix in (".safetensors", ".pt", ".pth"):
        return load_session("auto", task, weights=name, **options)
    return load_session(name, task, **options)


def run_official_input(loaded: LoadedModel, official_input: torch.Tensor) -> torch.Tensor:
    """Feed what the authors' forward received (recipes LRR, LR, CC) to our module.

    Channels past our input width only built the authors' training masks, which are off at
    inference; they are passed as the (unused) ``coc`` guide. No colour swap: for parity tests.
    """
    n = loaded.in_chans
    extra = official_input[:, n:] if official_input.shape[1] > n else None
    with torch.inference_mode():
        return loaded.module(official_input[:, :n], coc=extra, guide_weight=0.0)
