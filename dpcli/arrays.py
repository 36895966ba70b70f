"""The numpy <-> torch boundary: every plain conversion between caller arrays and tensors.

Callers hand numpy arrays or torch tensors in any of the layouts images come in; the code below
works on float32 tensors. :func:`to_tensor` / :func:`to_numpy` convert values (float32, CPU),
:func:`as_float` keeps a tensor where it is, :func:`to_nchw` reads an image's layout into a
(N, C, H, W) batch and :class:`Layout` restores it, :func:`encode` converts between linear and
sRGB values of a numpy image. Depends on numpy, torch and (for :func:`encode` only) the colour
curves of :mod:`dpcli.optics.color` (kornia keeps this boundary in one small module too).

>>> t, layout = to_nchw(np.zeros((8, 6, 3), np.uint8), "image")
>>> tuple(t.shape), layout.restore(t).shape
((1, 3, 8, 6), (8, 6, 3))
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dpcli.errors import InputError

__all__ = ["Layout", "as_float", "encode", "to_nchw", "to_numpy", "to_tensor"]


def to_tensor(x: Any) -> torch.Tensor:
    """float32 CPU tensor of an array (numpy or torch), sharing memory where it can."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu()
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def as_float(x: Any) -> torch.Tensor:
    """float32 tensor of an array: a tensor stays on its device (and in its autograd graph), a
    numpy array (or anything ``np.asarray`` reads) becomes a CPU tensor as :func:`to_tensor`."""
    return x.float() if isinstance(x, torch.Tensor) else to_tensor(x)


def to_numpy(x: Any) -> np.ndarray:
    """float32 numpy array of a tensor or array (a no-op on float32 numpy)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def encode(x: Any, to_srgb: bool) -> np.ndarray:
    """Linear -> sRGB (``to_srgb``) or sRGB -> linear of a numpy image, float32 out (linear values
    are clamped at 0, sRGB ones to [0, 1] before decoding)."""
    from dpcli.optics.color import linear_to_srgb, srgb_to_linear

    t = to_tensor(x)
    return (linear_to_srgb(t.clamp(0, None)) if to_srgb else srgb_to_linear(t.clamp(0, 1))).numpy()


@dataclass
class Layout:
    """How a caller's image was laid out, to give results back the same way."""

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


def to_nchw(image: Any, what: str) -> tuple[torch.Tensor, Layout]:
    """(N, C, H, W) float32 CPU tensor of an image and its :class:`Layout`.

    Args:
        image: numpy or torch (H, W), (C, H, W) or (H, W, C) with C in {1, 3}, or a torch
            (N, C, H, W) batch; integers are scaled to [0, 1] (uint8 by 255, 16-bit by 65535).
        what: the image's name in error messages.
    Raises:
        InputError: not an array, an unsupported dtype, or a shape whose channel axis is unclear.
    """
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
        return t[None, None], Layout(numpy, "HW", t.dtype)
    if t.ndim == 3:
        if t.shape[0] in (1, 3):
            if t.shape[-1] in (1, 3):
                warnings.warn(f"{what}: shape {tuple(t.shape)} fits (C, H, W) and (H, W, C); read as (C, H, W)",
                              stacklevel=4)  # the caller of dpcli.deblur / deblur_pair
            return t[None], Layout(numpy, "CHW", t.dtype)
        if t.shape[-1] in (1, 3):
            return t.permute(2, 0, 1)[None], Layout(numpy, "HWC", t.dtype)
        raise InputError(f"{what}: cannot tell the channel axis of shape {tuple(t.shape)} (1 or 3 channels)")
    if t.ndim == 4 and not numpy and t.shape[1] in (1, 3):
        return t, Layout(False, "NCHW", t.dtype)
    raise InputError(f"{what}: unsupported shape {tuple(t.shape)}; expected (C, H, W), (H, W, C), (H, W) "
                     "or a torch (N, C, H, W) batch with 1 or 3 channels")
