"""Local DP disparity and the focus gate (dpcli.optics.disparity)."""
import pytest
import torch
import torch.nn.functional as F

from dpcli.metrics.image import fourier_shift
from dpcli.optics.disparity import focus_gate, local_disparity
from dpcli.synth.scene import make_test_scene


def _texture(h=64, w=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.rand(1, 1, h, w, generator=g), 3, 1, 1)


class TestLocalDisparity:
    def test_identical_views_have_none(self):
        x = _texture()
        assert local_disparity(x, x).abs().max().item() == 0.0

    @pytest.mark.parametrize("shift", [0.5, -0.5, 1.0])
    def test_sign_and_size_of_a_known_shift(self, shift):
        x = _texture()
        d = local_disparity(fourier_shift(x, shift / 2, 0), fourier_shift(x, -shift / 2, 0))
        core = d[..., 12:-12, 12:-12].median().item()
        assert core == pytest.approx(shift, rel=0.4)  # LK on random texture: biased, never the wrong sign

    def test_flat_views_give_zero_not_noise(self):
        flat = torch.full((1, 3, 32, 32), 0.4)
        noisy = flat + 1e-4 * torch.randn(1, 3, 32, 32)
        assert local_disparity(flat, noisy).abs().max().item() < 0.05

    def test_shape_guard(self):
        with pytest.raises(ValueError, match=r"\(1, 1, 8, 8\)"):
            local_disparity(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))


class TestFocusGate:
    def test_in_focus_pair_is_closed_everywhere(self):
        s = make_test_scene(96, seed=1)
        g = focus_gate(s.sharp[None], s.sharp[None], srgb=False)
        assert g.shape == (1, 1, 96, 96) and g.max().item() == 0.0

    def test_opens_where_the_scene_is_blurred(self):
        s = make_test_scene(160, seed=2, max_radius=6.0, focus_mode="front")
        g = focus_gate(s.left[None], s.right[None], srgb=False)[0, 0]
        r = s.defocus[0].abs()
        sharp, blurred = g[r < 0.3].mean().item(), g[r > 3].mean().item()
        assert blurred > 0.5 and sharp < 0.25 and blurred > 4 * sharp

    def test_range_and_encoding(self):
        s = make_test_scene(64, seed=2, max_radius=4.0)
        lin = focus_gate(s.left[None], s.right[None], srgb=False)
        assert 0.0 <= lin.min().item() and lin.max().item() <= 1.0
