"""DP blur physics: kernels, convolution, Fourier-domain deconvolution pieces, windows, sRGB curve,
thin-lens CoC and the layered renderer.

Small batched, differentiable torch functions (deepinv/kornia style); shapes in docstrings.
Sign and unit conventions: docs/CONVENTIONS.md ("Defocus maps").
"""
from dpcli.optics.coc import coc_radius, coc_scale, depth_for_radius
from dpcli.optics.color import linear_to_srgb, srgb_to_linear
from dpcli.optics.detail import (CORRECTION_GATE_DEFAULTS, ENDORSEMENT_GATE_DEFAULTS, IN_FOCUS_DEFAULTS, band_detail,
                                 correction_gate, endorsement, endorsement_gate, in_focus_pixels, in_focus_share)
from dpcli.optics.disparity import FOCUS_GATE_DEFAULTS, focus_gate, local_disparity
from dpcli.optics.conv import PADDING_MODES, blur, blur_direct, blur_fft, choose_method, fast_len, pad_image
from dpcli.optics.fourier import Padded, gradient_power, kernel_otf, taper_pad, wiener_joint
from dpcli.optics.kernels import (
    MeasuredKernelFn,
    equivalent_radius,
    combined_kernel,
    disk_kernel,
    dp_kernels,
    gaussian_kernel,
    kernel_centroid,
    kernel_grid_roi,
    kernel_size_for,
    load_measured_kernels,
    rdpd_kernel_bank,
    recentre_kernels,
    scale_kernels,
    translating_disk_kernels,
)
from dpcli.optics.render import (
    RenderResult,
    blur_layers,
    blur_support,
    edge_asymmetry_mask,
    over_composite,
    patch_weights,
    render_layers,
    render_mpi,
    space_varying_blur,
)
from dpcli.optics.windows import (
    box_mean,
    cosine_ramp,
    ramp_gate,
    restore_local_mean,
    smooth_mean,
    taper_window,
    tent_weights,
)

__all__ = [
    "PADDING_MODES", "blur", "blur_direct", "blur_fft", "choose_method", "fast_len", "pad_image",
    "combined_kernel", "disk_kernel", "dp_kernels", "gaussian_kernel", "kernel_centroid", "kernel_grid_roi",
    "kernel_size_for", "load_measured_kernels", "rdpd_kernel_bank", "recentre_kernels",
    "scale_kernels", "translating_disk_kernels", "MeasuredKernelFn", "equivalent_radius",
    "linear_to_srgb", "srgb_to_linear",
    "coc_radius", "coc_scale", "depth_for_radius",
    "RenderResult", "blur_layers", "blur_support", "edge_asymmetry_mask", "over_composite",
    "patch_weights", "render_layers", "render_mpi", "space_varying_blur",
    "kernel_otf", "gradient_power", "wiener_joint", "taper_pad", "Padded",
    "local_disparity", "focus_gate", "FOCUS_GATE_DEFAULTS",
    "band_detail", "correction_gate", "CORRECTION_GATE_DEFAULTS", "endorsement", "endorsement_gate",
    "ENDORSEMENT_GATE_DEFAULTS", "in_focus_pixels", "in_focus_share", "IN_FOCUS_DEFAULTS",
    "box_mean", "cosine_ramp", "ramp_gate", "restore_local_mean", "smooth_mean", "taper_window", "tent_weights",
]
