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
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dpcli.engine import Deblurrer, load_session, run_official_input
from dpcli.tiling import plan_tiles, tile_budget_px

# Deblurrer, load_session, plan_tiles, tile_budget_px, run_official_input: re-exported from the engine
__all__ = ["Deblurrer", "deblur", "deblur_pair", "deblur_image", "estimate_coc", "load_session", "plan_tiles",
           "tile_budget_px", "run_official_input"]


def deblur_pair(left: Any, right: Any, model: str = "bambnet", *, weights: str | Path | None = None,
                arch: str | None = None, device: str = "auto", precision: str = "fp32",
                tile: int | None = None, tile_overlap: int | None = None,
                channels_last: bool | None = None) -> Any:
    """All-in-focus image from a DP pair (BaMBNet by default).

    Args:
        left, right: the two views, same shape (see module docstring for layouts).
        model: ``bambnet`` or an architecture / ``arch.tag`` (``dpdeblur models``).
        weights: checkpoint file (our safetensors, or the authors' .pth); None = registered weights.
        arch: needed when a file fits several architectures (BaMBNet deblur vs COC).
        device, precision, tile, tile_overlap, channels_last: see :class:`Deblurrer`.
    Returns: the AiF image, same type and layout as ``left``, values in [0, 1].
    Raises:
        ModelError: no weights / wrong or ambiguous architecture; InputError: bad arrays.
    """
    session = load_session(model, "deblur_pair", weights=weights, arch=arch, device=device,
                           precision=precision, tile=tile, tile_overlap=tile_overlap, channels_last=channels_last)
    return session.deblur_pair(left, right)


def deblur_image(image: Any, model: str = "defocusgan", *, weights: str | Path | None = None,
                 arch: str | None = None, device: str = "auto", precision: str = "fp32",
                 tile: int | None = None, tile_overlap: int | None = None,
                 channels_last: bool | None = None) -> Any:
    """All-in-focus image from one blurred image (DefocusGAN by default); as :func:`deblur_pair`."""
    session = load_session(model, "deblur_single", weights=weights, arch=arch, device=device,
                           precision=precision, tile=tile, tile_overlap=tile_overlap, channels_last=channels_last)
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
