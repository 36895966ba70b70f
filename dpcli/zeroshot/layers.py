"""Stage 1 of the zero-shot MPI method as a pipeline step: the latent layers (thesis 004, section 3.1).

:func:`solve_layers` picks the solver the config and kernels call for (the solvers themselves are
in :mod:`dpcli.zeroshot.init`) and returns the :class:`~dpcli.zeroshot.init.LayerStack` with its radii.
"""
from __future__ import annotations

import torch

from dpcli.zeroshot.config import ZeroShotConfig
from dpcli.zeroshot.init import LayerStack, closed_form_layers, closed_form_layers_patched, iterative_layers
from dpcli.zeroshot.kernels import KernelSetup, kernel_size, layer_kernels, measured_layer_kernels

__all__ = ["solve_layers", "store_dtype", "LayerStack"]


def store_dtype(cfg: ZeroShotConfig) -> torch.dtype:
    """dtype the (L, C, H, W) layer maps are kept in: bf16 with ``precision="bf16"`` (half the memory)."""
    return torch.bfloat16 if cfg.precision == "bf16" else torch.float32


def solve_layers(left: torch.Tensor, right: torch.Tensor, kernels: KernelSetup, cfg: ZeroShotConfig,
                 deadline: float | None = None) -> LayerStack:
    """Stage 1: every MPI layer deconvolved from both views with its own kernel pair.

    Args:
        left, right: (C, H, W) linear views, our orientation, on the compute device.
        kernels: :class:`KernelSetup` from :func:`dpcli.zeroshot.kernels.prepare_kernels`.
        cfg: ``init="closed"``: exact joint L/R Wiener solve per layer (per calibration patch,
            tent-blended, with measured kernels: each patch's PSF stretched to every radius);
            ``init="iterative"``: the thesis' Adam on Eq. 4 (measured kernels enter as their
            field mean).
        deadline: ``time.perf_counter()`` value the iterative solver stops at (the closed form is
            a fixed cost of one FFT solve per layer).

    Returns:
        :class:`LayerStack` (latent, blur_left, blur_right: (L, C, H, W); radii (L,); seconds).
    """
    store = store_dtype(cfg)
    radii = kernels.radii
    if cfg.init == "closed" and kernels.measured is not None:  # calibrated kernels vary over the field
        ml, mr = kernels.measured
        size = kernel_size(cfg.max_radius * cfg.measured_support)
        per_patch = measured_layer_kernels(ml, mr, radii, size)
        stack = closed_form_layers_patched(left, right, per_patch, cfg.grid, cfg.lam, store, kernels.roi)
        del per_patch
    elif cfg.init == "closed":
        stack = closed_form_layers(left, right, layer_kernels(kernels.uniform, radii), cfg.lam, store)
    else:
        stack = iterative_layers(left, right, layer_kernels(kernels.uniform, radii), cfg.init_iters, cfg.init_lr,
                                 deadline, store)
    stack.radii = radii
    return stack
