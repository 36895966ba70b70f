"""The artefact measure sees ringing and overshoot, not blur; the running max is exact."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpcli.classical.filters import local_range
from dpcli.metrics.artefacts import artefact_map, artefact_share, edge_band, input_artefact_share


def _step(h: int = 64, w: int = 64) -> torch.Tensor:
    """(1, 3, H, W) dark left half, bright right half."""
    x = torch.full((1, 3, h, w), 0.1)
    x[..., w // 2:] = 0.8
    return x


def _disc_blur(x: torch.Tensor, r: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    k = ((yy ** 2 + xx ** 2) <= r * r).float()
    k = (k / k.sum()).expand(x.shape[1], 1, -1, -1)
    return F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), k, groups=x.shape[1])


class TestLocalRange:
    @pytest.mark.parametrize("r", [0, 1, 3, 8, 20])
    def test_equals_max_pool(self, r):
        x = torch.rand(2, 3, 37, 45)
        lo, hi = local_range(x, r)
        k = 2 * r + 1
        assert torch.equal(hi, F.max_pool2d(x, k, stride=1, padding=r))
        assert torch.equal(lo, -F.max_pool2d(-x, k, stride=1, padding=r))


class TestArtefactShare:
    def test_reference_scores_zero(self):
        gt = _step()
        assert float(artefact_share(gt, gt)) == 0.0

    def test_blur_within_window_scores_zero(self):
        gt = _step()
        assert float(artefact_share(_disc_blur(gt, 6), gt)) == 0.0

    def test_ringing_is_seen(self):
        gt = _step()
        yy = torch.arange(64, dtype=torch.float32)
        ring = gt + 0.05 * torch.cos(yy / 3)[None, None, :, None] * (torch.arange(64) < 32).float()
        share = float(artefact_share(ring, gt))
        assert share > 0.3  # the dark half near the edge rings in about half its rows
        assert float(artefact_share(gt + 0.005, gt)) == 0.0  # within the 2/255 tolerance

    def test_overshoot_is_seen_per_channel(self):
        gt = _step()
        over = gt.clone()
        over[:, 0, :, 28:32] = 0.0  # a dark halo in the red channel only, 4 px wide by the edge
        art, near = artefact_map(over, gt)
        assert bool(art[0, 0, 10, 29]) and not bool(art[0, 0, 10, 20])
        assert float(artefact_share(over, gt)) == pytest.approx(4 * 64 / near.sum().item(), rel=1e-6)

    def test_mask_and_layouts(self):
        gt = _step()
        over = gt.clone()
        over[..., 28:32] = 0.0
        mask = np.ones((64, 64), bool)
        mask[:, 20:40] = False  # hides the halo
        assert float(artefact_share(over, gt, mask)) == 0.0
        hw = artefact_share(over[0, 0].numpy(), gt[0, 0].numpy())
        assert hw.shape == (1,) and float(hw) > 0

    def test_batched(self):
        gt = _step().expand(2, -1, -1, -1).clone()
        pred = gt.clone()
        pred[1, :, :, 30] = 1.0
        share = artefact_share(pred, gt)
        assert share.shape == (2,) and float(share[0]) == 0.0 and float(share[1]) > 0

    def test_no_edges_no_count(self):
        flat = torch.full((1, 1, 32, 32), 0.5)
        assert not edge_band(flat).any()
        assert float(artefact_share(flat + 0.2, flat)) == 0.0

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="differ in shape"):
            artefact_share(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))


class TestInputArtefactShare:
    def test_blurred_input_vs_ringing_output(self):
        gt = _step()
        blurred = _disc_blur(gt, 4)
        assert float(input_artefact_share(gt, blurred)) == 0.0  # a perfect deblur of a step is clean
        yy = torch.arange(64, dtype=torch.float32)
        ring = gt + 0.05 * torch.cos(yy / 3)[None, None, :, None]
        assert float(input_artefact_share(ring, blurred)) > 0.3
