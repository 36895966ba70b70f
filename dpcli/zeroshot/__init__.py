"""Zero-shot per-scene MPI defocus deblurring of one dual-pixel pair (thesis 004).

Public API: :func:`zeroshot_deblur` (left, right, config) -> :class:`ZeroShotResult`, and its
named stages (one module each; see :mod:`dpcli.zeroshot.pipeline` and docs/zeroshot.md):

1. :func:`solve_layers` -> :class:`LayerStack`: every MPI layer deconvolved with its DP kernel
   pair (closed form in the Fourier domain, or the thesis' gradient descent);
   :func:`fuse_layers` -> :class:`Fusion`: per pixel, the blend of layers that is the image
   (methods by name: :func:`fusion_methods`, :func:`register_fusion`; "residual" by default);
2. :func:`fit_defocus_map` -> :class:`DefocusStage`: G_D trained on the scene;
3. :func:`fit_kernels` -> :class:`KernelStage`: per-patch kernels from G_F; :func:`read_out` ->
   :class:`Readout`: the stage-3 image from them.
"""
from dpcli.zeroshot.config import OUTPUT_STAGES, SCHEDULES, ZeroShotConfig, make_config
from dpcli.zeroshot.defocus import DefocusStage, fit_defocus_map
from dpcli.zeroshot.fusion import (Fusion, blend_layers, defocus_from_weights, fuse_layers, fusion_methods,
                                   register_fusion, residual_weights)
from dpcli.zeroshot.init import LayerStack, closed_form_layers, closed_form_layers_patched, iterative_layers
from dpcli.zeroshot.kernel_stage import KernelStage, fit_kernels
from dpcli.zeroshot.kernels import KernelSetup, layer_radii, nearest_patch, prepare_kernels
from dpcli.zeroshot.layers import solve_layers
from dpcli.optics.orientation import horizontal_disparity  # the warning's check; its home is optics
from dpcli.zeroshot.pipeline import ZeroShotResult, zeroshot_deblur
from dpcli.zeroshot.readout import Readout, read_out

__all__ = [
    "ZeroShotConfig", "ZeroShotResult", "make_config", "SCHEDULES", "OUTPUT_STAGES", "zeroshot_deblur",
    "horizontal_disparity",
    "KernelSetup", "prepare_kernels", "layer_radii", "nearest_patch",
    "LayerStack", "solve_layers", "closed_form_layers", "closed_form_layers_patched", "iterative_layers",
    "Fusion", "fuse_layers", "fusion_methods", "register_fusion", "residual_weights", "blend_layers",
    "defocus_from_weights",
    "DefocusStage", "fit_defocus_map",
    "KernelStage", "fit_kernels",
    "Readout", "read_out",
]
