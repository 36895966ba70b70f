"""Shared network blocks (dpcli/models/blocks.py): channel attention, RCAB, defocus masks, the mask-weight schedule."""
from __future__ import annotations

import math

import torch

from dpcli.models.blocks import RCAB, ChannelAttention, defocus_masks, mask_weight


class TestBlocks:
    def test_channel_attention_rescales_channels_only(self) -> None:
        ca = ChannelAttention(8, reduction=4)
        x = torch.rand(2, 8, 5, 7)
        y = ca(x)
        ratio = y / x
        # one factor per (image, channel), in (0, 1)
        assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-5)
        assert bool((ratio > 0).all() and (ratio < 1).all())

    def test_rcab_is_identity_when_body_is_zero(self) -> None:
        block = RCAB(8, 4)
        torch.nn.init.zeros_(block.conv2.weight)
        torch.nn.init.zeros_(block.conv2.bias)
        x = torch.randn(1, 8, 6, 6)
        assert torch.equal(block(x), x)

    def test_masks_partition_by_thresholds(self) -> None:
        coc = torch.tensor([0.0, 1.0, -1.9, 3.0, 4.2, -6.0, 6.2, 20.0]).view(1, 1, 1, 8).repeat(1, 3, 1, 1)
        coc[:, 1] *= 0.5  # max over channels of |coc| decides
        masks = defocus_masks(coc, (0.0, 1.9, 4.2, 6.2))
        assert torch.equal(sum(masks), torch.ones(1, 1, 1, 8))
        which = torch.stack(masks).argmax(0).flatten().tolist()
        assert which == [0, 0, 1, 1, 2, 2, 3, 3]

    def test_mask_weight_schedule(self) -> None:
        assert mask_weight(0) == 1.0
        assert math.isclose(mask_weight(10_000), math.exp(-1), rel_tol=1e-6)
        assert math.isclose(mask_weight(19_999), math.exp(-(2 * 19_999 / 2e4) ** 2), rel_tol=1e-6)
        assert mask_weight(20_000) == 0.0 and mask_weight(10**6) == 0.0
