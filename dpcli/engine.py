"""The inference engine: loaded networks run on arrays of any size (below :mod:`dpcli.methods`).

One home for what every network call shares: the session (:class:`Deblurrer`: a loaded network
with its device, precision, tiles, BGR swap, grey expansion and post stage) and the session cache
(:func:`load_session`). The numpy <-> torch boundary (:func:`to_tensor`, :func:`to_numpy`,
:func:`to_nchw`, :class:`Layout`, :func:`encode`) lives in :mod:`dpcli.arrays` and is re-exported
here. The tile plan lives in :mod:`dpcli.tiling` (:func:`dpcli.tiling.plan_tiles`). The Python API
(:mod:`dpcli.api`) and the methods (:mod:`dpcli.methods`) call this module; it imports neither.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from dpcli.arrays import Layout, encode, to_nchw, to_numpy, to_tensor
from dpcli.device import precision_dtype, release_freed_memory, resolve_device
from dpcli.errors import DpError, InputError, ModelError
from dpcli.tiling import plan_tiles, run_tiled, tile_budget_px
from dpcli.timing import stage

if TYPE_CHECKING:  # the models are imported where a session is made, so the engine stays light
    from dpcli.models.loading import LoadedModel

__all__ = ["Deblurrer", "Layout", "blur_session", "endorse_session", "encode", "load_session", "run_official_input",
           "to_nchw", "to_numpy", "to_tensor"]


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

    def _run(self, views: list[torch.Tensor], progress: Callable[[int, int], None] | None,
             out_channels: int | None = None) -> torch.Tensor:
        """views: (N, C, H, W) RGB or grey tensors of equal shape -> (N, out_channels, H, W) float32
        CPU; by default 3, or 1 for grey views.

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
            with stage(f"network {self.loaded.info.name}"):
                return run_tiled(net, views, tile=tile, overlap=self.overlap, multiple_of=self.loaded.multiple_of,
                                 device=self.device, precision=self.precision,
                                 channels_last=self.channels_last, out_channels=out_channels, progress=progress)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise DpError(f"out of memory; use a smaller --tile (now {tile})") from exc

    def _post(self, out: torch.Tensor, reference: torch.Tensor, pair: tuple | None = None, gates: bool = True
              ) -> torch.Tensor:
        """The post stage of registered weights: the input's local mean restored (``keep_mean_px``);
        for a DP pair with ``focus_gate``, the correction kept only where the pair is out of focus
        (:func:`dpcli.optics.focus_gate`: an in-focus photo comes back unchanged); for a single image
        with ``correction_gate``, only where it restores detail the input lacks
        (:func:`dpcli.optics.correction_gate`), with ``endorse``, only where the named second network
        makes it too (:meth:`endorsement_gate`), with ``blur_gate``, only where the named BlurNet sees
        blur (:meth:`blur_gate`). ``gates`` False: the local mean alone (a second opinion's raw view)."""
        reference = reference.float().expand_as(out)
        if self.loaded.keep_mean_px > 0:
            from dpcli.optics.windows import restore_local_mean

            out = restore_local_mean(out, reference, self.loaded.keep_mean_px)
        if not gates:
            return out.clamp_(0, 1)
        if self.loaded.focus_gate and pair is not None:
            from dpcli.optics.disparity import focus_gate

            gate = focus_gate(pair[0].float(), pair[1].float(), srgb=self.loaded.space != "linear")
            out = reference + gate * (out - reference)
        if self.loaded.endorse and pair is None:
            out = reference + self.endorsement_gate(reference, out) * (out - reference)
        if self.loaded.correction_gate and pair is None:
            from dpcli.optics import correction_gate, linear_to_srgb

            image, corrected = reference, out  # the gate reads sRGB values
            if self.loaded.space == "linear":
                image, corrected = linear_to_srgb(image.clamp(0, 1)), linear_to_srgb(corrected.clamp(0, 1))
            out = reference + correction_gate(image, corrected) * (out - reference)
        if self.loaded.blur_gate and pair is None:
            gate = blur_session(self.loaded.blur_gate, device=str(self.device), precision=self.precision
                                ).blur_gate(reference, srgb=self.loaded.space != "linear")
            out = reference + gate * (out - reference)
        return out.clamp_(0, 1)

    def endorsement_gate(self, image: torch.Tensor, corrected: torch.Tensor) -> torch.Tensor:
        """Where the second network named by ``endorse`` makes this network's correction too
        (:func:`dpcli.optics.endorsement_gate` in sRGB values, on the second's output with its local
        mean kept and no gate of its own; it is fed the image in its own space). (N, C, H, W) input
        and output in this model's space -> (N, 1, H, W) in [0, 1]."""
        from dpcli.optics import endorsement_gate, linear_to_srgb, srgb_to_linear

        # loading for "deblur_single" refuses weights of another task (dpcli.models.loading._check_task)
        second = endorse_session(self.loaded.endorse, device=str(self.device), precision=self.precision)
        linear, second_linear = self.loaded.space == "linear", second.loaded.space == "linear"
        fed = image if linear == second_linear else (srgb_to_linear(image) if second_linear
                                                     else linear_to_srgb(image.clamp(0, 1)))
        other = second._post(second._run([fed], None), fed, gates=False)
        views = [linear_to_srgb(v.clamp(0, 1)) if linear else v for v in (image, corrected)]
        views.append(linear_to_srgb(other.clamp(0, 1)) if second_linear else other)
        return endorsement_gate(*views)

    def blur_map(self, image: torch.Tensor, progress=None) -> torch.Tensor:
        """(N, C, H, W) image in sRGB values -> (N, 1, H, W): a BlurNet's probability that each pixel
        is visibly out of focus."""
        self._need("blur")
        return self._run([image], progress, out_channels=1)

    def blur_gate(self, image: torch.Tensor, *, srgb: bool) -> torch.Tensor:
        """Where an image is out of focus, as its BlurNet reads it: (N, C, H, W) -> (N, 1, H, W) in
        [0, 1] (:func:`dpcli.optics.ramp_gate` with the network's ``gate_settings``)."""
        from dpcli.optics import linear_to_srgb
        from dpcli.optics.windows import ramp_gate

        if not srgb:
            image = linear_to_srgb(image.clamp(0, 1))
        return ramp_gate(self.blur_map(image), **self.module.gate_settings)

    def estimate_blur(self, image: Any, progress=None) -> Any:
        """Where one image is visibly out of focus (a BlurNet's probability), one channel: (H, W) /
        (1, H, W)."""
        t, layout = to_nchw(image, "image")
        if layout.layout == "HWC":
            layout = Layout(layout.numpy, "HW", layout.dtype)
        return layout.restore(self.blur_map(t, progress))

    def deblur_pair(self, left: Any, right: Any, progress=None) -> Any:
        self._need("deblur_pair")
        (lt, layout), (rt, _) = to_nchw(left, "left"), to_nchw(right, "right")
        return layout.restore(self._post(self._run([lt, rt], progress), (lt.float() + rt.float()) / 2, (lt, rt)))

    def deblur_image(self, image: Any, progress=None) -> Any:
        self._need("deblur_single")
        t, layout = to_nchw(image, "image")
        return layout.restore(self._post(self._run([t], progress), t))

    def estimate_coc(self, left: Any, right: Any, progress=None) -> Any:
        """Signed COC radius in px, one channel (mean of the network's three): (H, W) / (1, H, W)."""
        self._need("coc")
        (lt, layout), (rt, _) = to_nchw(left, "left"), to_nchw(right, "right")
        coc = self._run([lt, rt], progress).mean(dim=1, keepdim=True)
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


def _named_session(name: str, task: str, **options: Any) -> Deblurrer:
    """The session of registered weights (``arch.tag``) or a weights file, for ``task``."""
    if Path(name).suffix in (".safetensors", ".pt", ".pth"):
        return load_session("auto", task, weights=name, **options)
    return load_session(name, task, **options)


def blur_session(blur: str, **options: Any) -> Deblurrer:
    """The session of a blur gate: registered BlurNet weights (``arch.tag``) or a weights file."""
    return _named_session(blur, "blur", **options)


def endorse_session(name: str, **options: Any) -> Deblurrer:
    """The session of a second opinion: registered single-image weights (``arch.tag``) or a file."""
    return _named_session(name, "deblur_single", **options)


def run_official_input(loaded: LoadedModel, official_input: torch.Tensor) -> torch.Tensor:
    """Feed what the authors' forward received (recipes LRR, LR, CC) to our module.

    Channels past our input width only built the authors' training masks, which are off at
    inference; they are passed as the (unused) ``coc`` guide. No colour swap: for parity tests.
    """
    n = loaded.in_chans
    extra = official_input[:, n:] if official_input.shape[1] > n else None
    with torch.inference_mode():
        return loaded.module(official_input[:, :n], coc=extra, guide_weight=0.0)
