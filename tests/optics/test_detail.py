"""dpcli.optics.detail: local detail, the correction gate and the endorsement gate of single-image networks, and
the share of a photo in focus."""
import inspect

import torch

from dpcli.optics import (ENDORSEMENT_GATE_DEFAULTS, IN_FOCUS_DEFAULTS, band_detail, blur, correction_gate, disk_kernel,
                          endorsement, endorsement_gate, in_focus_pixels, in_focus_share)
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


def test_in_focus_share_counts_only_pixels_with_detail():
    """Left half textured, right half flat; the blur map reads the top half in focus: of the pixels
    with detail (the left half) half are in focus, whatever the map says of the flat half."""
    torch.manual_seed(0)
    image = torch.full((1, 3, 64, 64), 0.5)
    image[..., :32] += 0.2 * torch.rand(1, 1, 64, 32)
    prob = torch.ones(1, 1, 64, 64)
    prob[..., :32, :] = 0.0
    pixels = in_focus_pixels(prob, image)
    has = pixels[0, 0]
    assert has[:, :28].all() and not has[:, 36:].any()
    assert abs(float(in_focus_share(pixels)[0]) - 0.5) < 0.02
    assert float(in_focus_share(in_focus_pixels(torch.ones_like(prob), image))[0]) == 0.0
    assert float(in_focus_share(in_focus_pixels(prob, torch.full_like(image, 0.5)))[0]) == 0.0  # no detail


def test_in_focus_pixels_are_local_so_strips_give_the_full_frame_result():
    from dpcli.optics.windows import by_rows

    torch.manual_seed(1)
    image, prob = torch.rand(1, 3, 300, 40), torch.rand(1, 1, 300, 40)
    whole = in_focus_pixels(prob, image, **IN_FOCUS_DEFAULTS)
    strips = by_rows(lambda p, im: in_focus_pixels(p, im, **IN_FOCUS_DEFAULTS), [prob, image], 16, rows=64)
    assert torch.equal(whole, strips)
