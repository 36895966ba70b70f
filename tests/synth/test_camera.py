"""DSLR camera pipeline: round trip, white balance and matrix, saturated highlights, compression."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dpcli.synth.camera import (IspConfig, camera_from_srgb, compress, decode, inverse_tone_curve, process,
                                quantise, sample_isp, tone_curve, unprocess)


def _isp(seed: int = 0, **options):
    return sample_isp(np.random.default_rng(seed), IspConfig(**options))


def test_matrix_keeps_white():
    m = camera_from_srgb()
    assert np.allclose(m.sum(1), 1.0)
    isp = _isp()
    white = torch.ones(3, 2, 2)
    lin, y = process(unprocess(white, isp), isp)
    assert torch.allclose(lin, white, atol=1e-5) and torch.allclose(y, white, atol=1e-5)


@pytest.mark.parametrize("bits", [8, 16])
def test_round_trip_within_quantisation(bits):
    """decode(quantise(process(raw))) returns the raw values within the quantisation step."""
    isp = _isp(1, bit_depth=bits, contrast=(0.2, 0.2))
    gen = torch.Generator().manual_seed(0)
    scene = torch.rand(3, 32, 32, generator=gen) * 0.8 + 0.02
    raw = unprocess(scene, isp)
    assert float(raw.max()) < 1  # nothing clipped for this test
    _, y = process(raw, isp)
    stored = quantise(y, bits)
    back = decode(stored, isp)
    # one code step in the encoded domain, through the steepest slope of the inverse curve
    step = 1 / (2 ** bits - 1)
    slope = float((inverse_tone_curve(y + step, 0.2) - inverse_tone_curve(y, 0.2)).abs().max() / step)
    assert float((back - raw).abs().max()) <= 2 * slope * step + 1e-6
    assert float((back - raw).abs().mean()) < (1e-3 if bits == 8 else 1e-5)


def test_tone_curve_inverse():
    y = torch.linspace(0, 1, 101)
    for c in (0.0, 0.3):
        assert torch.allclose(tone_curve(inverse_tone_curve(y, c), c), y, atol=1e-5)


def test_saturated_highlights_clip_to_white():
    """Scene radiance above the white level clips in raw; after white balance it is white, not magenta."""
    isp = _isp(2)
    bright = torch.tensor([3.0, 2.5, 2.0]).view(3, 1, 1).expand(3, 4, 4)
    raw = unprocess(bright, isp).clamp(0, 1)
    lin, y = process(raw, isp)
    assert torch.allclose(y, torch.ones_like(y), atol=1e-5)


def test_jpeg_and_palette_change_values_boundedly():
    gen = torch.Generator().manual_seed(3)
    y = torch.rand(3, 48, 48, generator=gen)
    y = torch.nn.functional.avg_pool2d(y[None], 5, 1, 2)[0]
    isp = dataclasses.replace(_isp(4), jpeg_quality=85)
    j = compress(y, isp)
    assert j.shape == y.shape and 0 < float((j - y).abs().mean()) < 0.05
    isp = dataclasses.replace(_isp(4), palette=True)
    p = compress(y, isp)
    assert len(torch.unique(p.reshape(3, -1), dim=1).T) <= 256
    assert torch.equal(compress(y, _isp(4)), y)  # neither drawn: untouched


def test_scene_with_isp_and_highlights():
    """A rendered DSLR scene: stored values quantised to 16 bits, target clean (no JPEG), clipped
    highlights present, pipeline recorded in the metadata."""
    from dpcli.synth.scene import SceneConfig, render_scene

    cfg = SceneConfig(height=64, width=64, isp=True, highlight_prob=1.0, lights=(6, 6), stereo_prob=0.0,
                      isp_options=dict(jpeg_prob=1.0))
    sc = render_scene(0, cfg)
    assert sc.meta["isp"]["jpeg_quality"] is not None and sc.bit_depth == 16
    codes = sc.sharp * 65535
    assert torch.allclose(codes, codes.round(), atol=1e-2)
    assert float((sc.sharp >= 1 - 1e-6).float().mean()) > 0  # saturated highlights
    codes8 = sc.left * 255  # JPEG: 8-bit values
    assert torch.allclose(codes8, codes8.round(), atol=1e-3)
