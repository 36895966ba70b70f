"""Python API, the front door: :func:`deblur` runs the per-item pipeline of ``dpdeblur run``
(:mod:`dpcli.pipeline`) on arrays; :func:`deblur_pair`, :func:`deblur_image` and
:func:`estimate_coc` run one network through the inference engine (:mod:`dpcli.engine`).

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

from pathlib import Path
from typing import Any

import numpy as np

from dpcli.engine import Deblurrer, load_session, run_official_input
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


def deblur(left: np.ndarray, right: np.ndarray | None = None, *, srgb: bool | None = None, method: str = "auto",
           kernels: tuple | None = None, swap_lr: bool | None = None, focus: str = "front",
           defocus: bool = False, camera: str | None = None, **options: Any):
    """Deblur as ``dpdeblur run`` does, through the same per-item pipeline (:mod:`dpcli.pipeline`):
    a DP pair (or one image with ``right=None``) through the method named, or with
    ``method="auto"`` the best measured for the data's domain; a pair's L/R order is ``swap_lr``,
    else the camera profile's known order, else detected; calibration ``kernels`` (left, right)
    are put in our order from their own shape.

    Args:
        left, right: (C, H, W) float32 views in [0, 1] (numpy or torch); ``srgb`` says how they
            are encoded (default: the camera profile's encoding, else sRGB).
        camera: a camera profile name (``dpdeblur cameras``): its domain, view order and focus side.
        options: method options (``device``, ``precision``, ``tile``, ``weights`` ...).
    Returns:
        :class:`dpcli.methods.MethodOutput` (``image`` in the input's encoding, clipped to [0, 1];
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
    done = process(Views.from_arrays(left, right), Source(srgb=srgb, swap_lr=swap_lr, profile=profile, focus=focus),
                   Options(method, weights, arch, defocus=defocus, kernels=kernels, runtime=options))
    return MethodOutput(done.image, done.defocus, dict(done.info, provenance=done.provenance))
