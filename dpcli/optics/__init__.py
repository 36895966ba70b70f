"""DP blur physics: kernels, convolution, sRGB curve, thin-lens CoC and the layered renderer.

Small batched, differentiable torch functions (deepinv/kornia style); shapes in docstrings.
Sign and unit conventions: CONVENTIONS.md ("Defocus maps").
"""
from dpcli.optics.color import linear_to_srgb, srgb_to_linear
from dpcli.optics.conv import PADDING_MODES, blur, blur_direct, blur_fft, choose_method, pad_image
from dpcli.optics.kernels import (
    combined_kernel,
    disk_kernel,
    dp_kernels,
    gaussian_kernel,
    kernel_centroid,
    kernel_size_for,
    load_measured_kernels,
    rdpd_kernel_bank,
    recentre_kernels,
    scale_kernels,
    translating_disk_kernels,
)

__all__ = [
    "PADDING_MODES", "blur", "blur_direct", "blur_fft", "choose_method", "pad_image",
    "combined_kernel", "disk_kernel", "dp_kernels", "gaussian_kernel", "kernel_centroid",
    "kernel_size_for", "load_measured_kernels", "rdpd_kernel_bank", "recentre_kernels",
    "scale_kernels", "translating_disk_kernels",
    "linear_to_srgb", "srgb_to_linear",
]
