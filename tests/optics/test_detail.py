"""dpcli.optics.detail: local detail, the correction gate and the endorsement gate of single-image networks."""
import inspect

import torch

from dpcli.optics import (ENDORSEMENT_GATE_DEFAULTS, band_detail, blur, correction_gate, disk_kernel, endorsement,
                          endorsement_gate)
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


def _redraw():
    """A textured photo, a first network's re-drawing of it, and the change that re-drawing made."""
    sharp = make_test_scene(96, seed=4, max_radius=0.01).sharp[None].clamp(0, 1)
    first = (sharp + 0.3 * (sharp - blur(sharp, disk_kernel(1.5)[None]))).clamp(0, 1)  # sharpened
    return sharp, first


def test_endorsement_is_one_where_both_networks_make_the_same_correction_and_zero_where_one_does():
    image, first = _redraw()
    inner = (..., slice(12, -12), slice(12, -12))
    same = endorsement(image, first, first)
    assert float(same[inner].median()) > 0.9 and float(same.max()) <= 1.0  # eps: a faint change claims less
    assert float(endorsement(image, first, image).abs().max()) < 1e-6  # the second leaves it: no endorsement
    half = endorsement(image, first, image + 0.5 * (first - image))
    assert torch.allclose(half, 0.5 * same, atol=1e-5)  # linear in the second's change
    assert torch.allclose(endorsement(image, first, image - (first - image)), -same, atol=1e-5)
    assert endorsement(image.expand(2, -1, -1, -1), first.expand(2, -1, -1, -1), image.expand(2, -1, -1, -1)
                       ).shape == (2, 1, 96, 96)


def test_endorsement_gate_drops_what_only_the_first_network_redraws():
    image, first = _redraw()
    assert float(endorsement_gate(image, first, image).max()) == 0.0
    assert float(endorsement_gate(image, first, first)[..., 12:-12, 12:-12].min()) > 0.99
    # endorsed on the left half only: the gate opens there and stays shut on the right, beyond the
    # reach of its window (10 px) and spread (12 px dilated, 12 px smoothed)
    second = image.clone()
    second[..., :40] = first[..., :40]
    gate = endorsement_gate(image, first, second)
    assert float(gate[..., 12:-12, 8:28].min()) > 0.99 and float(gate[..., 12:-12, 40 + 10 + 24:].max()) == 0.0


def test_endorsement_gate_defaults_are_the_documented_settings():
    params = inspect.signature(endorsement_gate).parameters
    assert {k: params[k].default for k in ENDORSEMENT_GATE_DEFAULTS} == ENDORSEMENT_GATE_DEFAULTS
