"""Python API, the front door: :func:`deblur` runs the per-item pipeline of ``dpdeblur run``
(:mod:`dpcli.pipeline`) on arrays; :func:`deblur_pair`, :func:`deblur_image` and
:func:`estimate_coc` run one network through the inference engine (:mod:`dpcli.engine`).

Arrays follow docs/CONVENTIONS.md: float values in [0, 1] (integer numpy arrays are scaled by their
type's maximum), RGB or grey. Accepted layouts: torch (C, H, W) / (N, C, H, W); numpy (C, H, W)
or (H, W, C) (recognised by which axis has 1 or 3 entries) or (H, W). Results come back in the
caller's type and layout. Any size works: inputs are padded to the network's multiple and,
by default, processed in overlapping tiles (bounded memory); the authors' BGR weights get
their channel order swapped by the engine (:class:`Deblurrer`), never by the user.

>>> import numpy as np, dpcli
>>> left = right = np.random.rand(3, 64, 80).astype(np.float32)
>>> aif = dpcli.deblur_pair(left, right, model="bambnet", weights="BaMBNet.pth", arch="bambnet_deblur")  # doctest: +SKIP
>>> aif = dpcli.deblur_pair(left, right, weights="dual_pixel_defocus_deblurring.pth")  # Restormer  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpcli.engine import Deblurrer, Layout, load_session, run_official_input, to_nchw
from dpcli.tiling import plan_tiles, tile_budget_px

# Deblurrer, load_session, run_official_input (the engine) and plan_tiles, tile_budget_px (tiling): re-exported
__all__ = ["Deblurrer", "deblur", "deblur_pair", "deblur_image", "estimate_coc", "load_session", "plan_tiles",
           "tile_budget_px", "run_official_input"]


def deblur_pair(left: Any, right: Any, model: str | None = None, *, weights: str | Path | None = None,
                arch: str | None = None, device: str = "auto", precision: str = "fp32",
                tile: int | None = None, tile_overlap: int | None = None,
                channels_last: bool | None = None) -> Any:
    """All-in-focus image from a DP pair (BaMBNet by default).

    Args:
        left, right: the two views, same shape (see module docstring for layouts).
        model: a family (``bambnet``, ``restormer``, ``lakdnet``...), an architecture or ``arch.tag``
            (``dpdeblur models``); None: the family of ``weights`` (read from the file), else the
            shipped weights measured best on this kind of data (grey: phone, colour: dslr).
        weights: checkpoint file (our safetensors, or the authors' .pth) or the ``arch.tag`` name of
            shipped weights; None = registered weights.
        arch: needed when a file fits several architectures (BaMBNet deblur vs COC).
        device, precision, tile, tile_overlap, channels_last: see :class:`Deblurrer`.
    Returns: the AiF image, same type and layout as ``left``, values in [0, 1]; registered weights
        also run the post steps their manifest entry lists (:mod:`dpcli.methods.post`), as ``run`` does.
    Raises:
        ModelError: no weights / wrong or ambiguous architecture; InputError: bad arrays.
    """
    session = load_session(model or ("auto" if weights else _shipped_network(left, True)), "deblur_pair",
                           weights=weights, arch=arch,
                           device=device, precision=precision, tile=tile, tile_overlap=tile_overlap,
                           channels_last=channels_last)
    return session.deblur_pair(left, right, post=_post(session))


def deblur_image(image: Any, model: str | None = None, *, weights: str | Path | None = None,
                 arch: str | None = None, device: str = "auto", precision: str = "fp32",
                 tile: int | None = None, tile_overlap: int | None = None,
                 channels_last: bool | None = None) -> Any:
    """All-in-focus image from one blurred image (the family of ``weights``, else the shipped
    single-image weights measured best on this kind of data); as :func:`deblur_pair`."""
    session = load_session(model or ("auto" if weights else _shipped_network(image, False)), "deblur_single",
                           weights=weights,
                           arch=arch, device=device, precision=precision, tile=tile, tile_overlap=tile_overlap,
                           channels_last=channels_last)
    return session.deblur_image(image, post=_post(session))


def _post(session: Deblurrer):
    """The post steps of the session's weights entry (:mod:`dpcli.methods.post`), as ``run`` runs them."""
    from dpcli.methods.post import post_for

    return post_for(session)


def _shipped_network(view: Any, pair: bool) -> str:
    """``arch.tag`` of the shipped network measured best on data like ``view`` (one channel: the
    phone domain, three: dslr), for DP pairs or single images (as ``run`` ranks them)."""
    from dpcli.errors import ModelError
    from dpcli.methods import default_method, list_methods
    from dpcli.methods.network import shipped_network_names

    with warnings.catch_warnings():  # an ambiguous shape is said once, where the view is read
        warnings.simplefilter("ignore")
        domain = "phone" if to_nchw(view, "image")[0].shape[1] == 1 else "dslr"
    shipped = set(shipped_network_names())
    best = default_method(domain, pair, [m for m in list_methods() if m.name in shipped])
    if best is None:
        raise ModelError(f"no network for {'DP pairs' if pair else 'single images'} of {domain} data ships with "
                         "dpdeblur: give your own file (weights=FILE)")
    return best.name


def estimate_coc(left: Any, right: Any, model: str = "bambnet", *, weights: str | Path | None = None,
                 arch: str | None = None, device: str = "auto", precision: str = "fp32",
                 tile: int | None = None, tile_overlap: int | None = None,
                 channels_last: bool | None = None) -> Any:
    """Signed COC / defocus radius map in px (docs/CONVENTIONS.md) from a DP pair.

    ``model``: ``bambnet`` (COC net) or ``defocusgan`` (defocus-map estimator). Returns (H, W)
    for numpy/HW inputs, (1, H, W) for (C, H, W), (N, 1, H, W) for batches.
    """
    session = load_session(model, "coc", weights=weights, arch=arch, device=device, precision=precision,
                           tile=tile, tile_overlap=tile_overlap, channels_last=channels_last)
    return session.estimate_coc(left, right)


def deblur(left: np.ndarray, right: np.ndarray | None = None, *, srgb: bool | None = None, method: str = "auto",
           kernels: tuple | None = None, swap_lr: bool | None = None, focus: str = "front",
           defocus: bool = False, camera: str | None = None, **options: Any):
    """Deblur as ``dpdeblur run`` does, through the same per-item pipeline (:mod:`dpcli.pipeline`):
    a DP pair (or one image with ``right=None``) through the method named, or with
    ``method="auto"`` the best measured for the data's domain; a pair's L/R order is ``swap_lr``,
    else the camera profile's known order, else detected; calibration ``kernels`` (left, right)
    are put in our order from their own shape.

    Args:
        left, right: views in [0, 1], numpy or torch, (C, H, W), (H, W, C) or (H, W) (see the module
            docstring; a shape that fits both (C, H, W) and (H, W, C) is read as (C, H, W), with a
            warning); ``srgb`` says how they are encoded (default: the camera profile's, else sRGB).
        camera: a camera profile name (``dpdeblur cameras``): its domain, view order and focus side.
        options: method options (``device``, ``precision``, ``tile``, ``weights`` ...).
    Returns:
        :class:`dpcli.methods.MethodOutput` (``image`` in the input's encoding, type and layout,
        clipped to [0, 1];
        ``defocus`` map with ``defocus=True``; ``info`` with ``method``, ``orientation`` and
        ``provenance``: which rule or flag decided each step).
    Raises:
        InputError: nothing shipped for this kind of data, or inputs the method cannot take.
    """
    from dpcli.methods import MethodOutput
    from dpcli.optics.orientation import orient_kernels
    from dpcli.pipeline import Options, Source, Views, process

    profile = None
    if camera is not None:
        from dpcli.cameras import load_profile

        profile = load_profile(camera)
    if srgb is None:
        srgb = profile.srgb if profile is not None else True
    if kernels is not None:
        kernels = orient_kernels(*kernels, focus="back" if focus == "back" else "front")[:2]
    weights, arch = options.pop("weights", None), options.pop("arch", None)
    (left, layout), right = _one_view(left, "left"), None if right is None else _one_view(right, "right")[0]
    done = process(Views.from_arrays(left, right), Source(srgb=srgb, swap_lr=swap_lr, profile=profile, focus=focus),
                   Options(method, weights, arch, defocus=defocus, kernels=kernels, runtime=options))
    image = layout.restore(torch.from_numpy(np.ascontiguousarray(done.image))[None])
    return MethodOutput(image, done.defocus, dict(done.info, provenance=done.provenance))


def _one_view(view: Any, what: str) -> tuple[torch.Tensor, Layout]:
    """One view as a (C, H, W) tensor and the caller's layout (a torch batch must hold one view)."""
    from dpcli.errors import InputError

    t, layout = to_nchw(view, what)
    if t.shape[0] != 1:
        raise InputError(f"{what}: a batch of {t.shape[0]} views; dpcli.deblur takes one view per call")
    return t[0], layout
