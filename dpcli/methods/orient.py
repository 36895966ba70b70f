"""Orientation of a DP pair for every DP command: the optics decision fed with the zero-shot
stage-1 side balance (which side of the focal plane its both-sides layer choice favours)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.arrays import to_tensor
from dpcli.optics.orientation import Orientation, detect_orientation

# the balance is read at reduced resolution: its sign needs the layer choice, not the detail
BALANCE_MAX_SIDE = 640
STAGE1_MIN_SIZE = 32  # the zero-shot stage 1 needs this many px per side


def stage1_side_balance(left, right, *, srgb: bool = False, max_side: int = BALANCE_MAX_SIDE) -> float:
    """Mass of the stage-1 layer choice (focus="both") on positive radii minus that on negative
    radii, in [-1, 1]; views downsampled to ``max_side`` px (radii scaled with them)."""
    from dpcli.optics import srgb_to_linear
    from dpcli.zeroshot import make_config, zeroshot_deblur

    lt, rt = to_tensor(left), to_tensor(right)
    if lt.ndim == 2:
        lt, rt = lt[None], rt[None]
    factor = max(1, int(np.ceil(max(lt.shape[-2:]) / max_side)))

    def reduced(view):  # linearised plane by plane: the conversion's temporaries are one plane's
        if srgb:
            view = torch.cat([srgb_to_linear(p.clamp(0, 1)) for p in view.split(1)])
        return F.avg_pool2d(view[None], factor)[0] if factor > 1 else view

    lt, rt = reduced(lt), reduced(rt)
    cfg = make_config("fast", focus="both", output_stage="init", keep_layers=True, layers=10,
                      max_radius=max(17.0 / factor, 3.0))
    res = zeroshot_deblur(lt, rt, cfg)
    w, radii = to_tensor(res.weights), to_tensor(res.radii)
    return float(w[radii > 0].sum(0).mean() - w[radii < 0].sum(0).mean())


def orient(left, right, *, srgb: bool, focus: str = "front", user: bool | None = None,
           hint: bool | None = None) -> Orientation:
    """:func:`dpcli.optics.orientation.detect_orientation` with the stage-1 side balance as the
    second evidence (used only when the global disparity is under half a pixel)."""
    small = min(np.shape(left)[-2:]) < STAGE1_MIN_SIZE  # no balance to read: the method says what it needs
    return detect_orientation(left, right, focus="back" if focus == "back" else "front", user=user, hint=hint,
                              side_balance=None if small else lambda a, b: stage1_side_balance(a, b, srgb=srgb))
