"""Single-image blind deconvolution (dpcli.classical.blind): the disc radius read from the spectrum,
and the photo deconvolved only where blur was measured."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpcli.classical.blind import (BlindConfig, deblur_single_classical, disc_log_otf, estimate_disc_radius,
                                   radial_log_power, wiener_deconvolve)
from dpcli.optics import blur, disk_kernel
from dpcli.synth.deadleaves import dead_leaves


@pytest.fixture(scope="module")
def sharp() -> torch.Tensor:
    return torch.from_numpy(dead_leaves(192, seed=3))


def _blurred(x: torch.Tensor, r: float) -> torch.Tensor:
    y = blur(x[None], disk_kernel(torch.tensor([r]))[:, None])[0]
    return torch.round(y.clamp(0, 1) * 255) / 255  # as an 8-bit file holds it


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float(((a.double() - b.double()) ** 2).mean()))


@pytest.mark.parametrize("radius", [2.0, 3.0, 5.0])
def test_radius_is_read_from_the_spectrum(sharp, radius):
    est = estimate_disc_radius(_blurred(sharp, radius))
    assert est.radius == radius
    assert est.confidence >= BlindConfig().confidence


def test_sharp_photo_measures_no_blur(sharp):
    est = estimate_disc_radius(sharp)
    assert est.radius == 0.0
    assert est.confidence < BlindConfig().confidence


@pytest.mark.parametrize("radius", [2.0, 3.0])
def test_deblurred_beats_the_blurred_input(sharp, radius):
    y = _blurred(sharp, radius)
    out, est = deblur_single_classical(y)
    assert est.radius == radius
    assert _psnr(out, sharp) > _psnr(y, sharp) + 1.0


def test_sharp_photo_comes_back_unchanged(sharp):
    out, _ = deblur_single_classical(sharp)
    assert torch.equal(out, sharp)


def test_wiener_undoes_a_known_disc_and_keeps_constants():
    x = torch.from_numpy(dead_leaves(128, seed=5))[None]
    k = disk_kernel(torch.tensor([3.0]))[0]
    y = blur(x, k[None, None])
    out = wiener_deconvolve(y, k, 1e-4)
    assert out.shape == x.shape
    assert _psnr(out.clamp(0, 1), x) > _psnr(y, x) + 5.0
    flat = torch.full((1, 1, 40, 50), 0.3)
    assert torch.allclose(wiener_deconvolve(flat, k, 0.01), flat, atol=1e-5)


def test_spectrum_of_a_disc_dips_at_its_first_zero():
    freq, _ = radial_log_power(torch.rand(64, 64))
    profile = disc_log_otf(4.0)
    first_zero = int(torch.argmin((freq - 0.61 / 4.0).abs()))
    assert profile[first_zero] < profile[first_zero - 4] - 2.0
    assert torch.equal(disc_log_otf(0.0), torch.zeros_like(profile))


def test_half_sharp_half_blurred_photo_is_left_alone():
    from dpcli.synth import degrade

    x = torch.from_numpy(dead_leaves(256, seed=4))[None]
    radius = torch.zeros(1, 1, 256, 256)
    radius[..., 128:] = 4.0  # the right half out of focus: no one radius fits the photo
    y = degrade.varying_blur(x, radius)[0]
    out, est = deblur_single_classical(y)
    assert est.radius == 0.0
    assert out is y


def test_blur_ramp_across_the_frame_does_no_harm():
    from dpcli.synth import degrade

    x = torch.from_numpy(dead_leaves(256, seed=4))[None]
    y = degrade.varying_blur(x, degrade.radius_ramp(256, 256, 0.0, 6.0, "horizontal"))[0]
    y = torch.round(y.clamp(0, 1) * 255) / 255
    out, _ = deblur_single_classical(y)
    assert _psnr(out, x[0]) >= _psnr(y, x[0])


def test_method_returns_the_callers_pixels_where_it_measures_no_blur(sharp):
    from dpcli.methods import get_method
    from dpcli.optics import linear_to_srgb

    srgb = (torch.round(linear_to_srgb(sharp) * 255) / 255).numpy()
    out = get_method("deconv_single").deblur(srgb, None, srgb=True)
    assert np.array_equal(out.image, srgb)
    assert out.info["blur_radius_px"] == 0.0
    blurred = get_method("deconv_single").deblur(_blurred(sharp, 3.0).numpy(), None, srgb=False)
    assert blurred.info["blur_radius_px"] == 3.0


def test_tv_prior_does_not_ring_where_wiener_does():
    from dpcli.classical.blind import tv_deconvolve

    x = torch.full((1, 1, 96, 96), 0.2)
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    x[0, 0][(yy - 48) ** 2 + (xx - 48) ** 2 < 20**2] = 0.8  # a bright coin on a flat background
    k = disk_kernel(torch.tensor([4.0]))[0]
    y = blur(x, k[None, None])
    flat = ((yy - 48) ** 2 + (xx - 48) ** 2 > 30**2) & (yy > 8) & (yy < 88) & (xx > 8) & (xx < 88)
    ring = {name: float((out[0, 0][flat] - 0.2).abs().max())
            for name, out in (("wiener", wiener_deconvolve(y, k, 0.005)), ("tv", tv_deconvolve(y, k, 0.0005)))}
    assert ring["tv"] < 0.5 * ring["wiener"]
    assert _psnr(tv_deconvolve(y, k, 0.0005).clamp(0, 1), x) > _psnr(y, x) + 3.0


def test_radial_log_power_in_row_blocks_is_the_whole_frame_computation_bit_for_bit() -> None:
    """The window and the frequency bins are applied ROWS rows at a time (memory); the result is the
    one-shot formula's exactly, on a frame of several blocks and a ragged last one."""
    from dpcli.classical.blind import ROWS

    img = torch.rand(2 * ROWS + 77, 301, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    h, w = img.shape
    win = torch.hann_window(h, periodic=False, dtype=img.dtype)[:, None] * torch.hann_window(w, periodic=False, dtype=img.dtype)[None, :]
    power = torch.fft.rfft2((img - img.mean()) * win).abs() ** 2
    freq = torch.sqrt(torch.fft.fftfreq(h, dtype=img.dtype)[:, None] ** 2 + torch.fft.rfftfreq(w, dtype=img.dtype)[None, :] ** 2)
    edges = torch.linspace(0.0, 0.5, 65, dtype=img.dtype)
    idx = (torch.bucketize(freq.flatten(), edges) - 1).clamp(0, 64)
    sums = torch.zeros(65, dtype=img.dtype).index_add_(0, idx, torch.log(power + 1e-20).flatten())
    count = torch.zeros(65, dtype=img.dtype).index_add_(0, idx, torch.ones_like(idx, dtype=img.dtype))
    want = sums[:64] / count[:64].clamp_min(1)
    centres, got = radial_log_power(img.clone(), 64)
    assert torch.equal(got, want)
    assert torch.allclose(centres, (edges[:-1] + edges[1:]) / 2)
