"""dpcli.optics.detail: local detail and the correction gate of single-image networks."""
import torch

from dpcli.optics import band_detail, blur, correction_gate, disk_kernel
from dpcli.synth.scene import make_test_scene


def test_band_detail_is_zero_on_flat_images_and_grows_with_contrast():
    flat = torch.full((1, 3, 32, 32), 0.4)
    assert float(band_detail(flat, 4.0, 3).max()) < 1e-6
    texture = make_test_scene(64, seed=1, max_radius=0.01).sharp[None]
    weak = 0.5 + 0.25 * (texture - 0.5)
    assert float(band_detail(texture, 4.0, 3).mean()) > 3 * float(band_detail(weak, 4.0, 3).mean())


def test_correction_gate_drops_a_redrawing_of_a_sharp_texture():
    sharp = make_test_scene(96, seed=2, max_radius=0.01).sharp[None].clamp(0, 1)
    redrawn = sharp + 0.15 * (blur(sharp, disk_kernel(1.0)[None]) - sharp)  # a network's small re-drawing
    assert float(correction_gate(sharp, redrawn).mean()) < 0.1


def test_correction_gate_keeps_a_correction_that_restores_a_blurred_edge():
    sharp = torch.full((1, 3, 64, 64), 0.1)
    sharp[..., :, 32:] = 0.8
    blurred = blur(sharp, disk_kernel(4.0)[None])
    gate = correction_gate(blurred, sharp)  # the ideal correction
    assert float(gate[..., 8:-8, 28:36].min()) > 0.99
    assert float(correction_gate(blurred, blurred).max()) == 0.0  # no correction, nothing to keep
