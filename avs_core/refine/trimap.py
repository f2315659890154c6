"""USPL Eq. 5 tri-map and AffinityNet pair labels."""
from __future__ import annotations

import torch

from avs_core.refine.neighbours import offset_index
from avs_core.refine.random_walk import half_disk_offsets

IGNORE = 255


def trimap(refined: torch.Tensor, beta_low: float, beta_high: float) -> torch.Tensor:
    """``[..., H, W]`` map in [0, 1] -> uint8: 1 where >= beta_high, 0 where < beta_low, 255 between."""
    out = torch.full(refined.shape, IGNORE, dtype=torch.uint8, device=refined.device)
    out[refined >= beta_high] = 1
    out[refined < beta_low] = 0
    return out


def affinity_labels(tri: torch.Tensor, radius: int):
    """Pair labels for every pixel and each half-disk offset (pairs leaving the image are invalid).

    Args:
        tri: ``[B, H, W]`` tri-map.

    Returns:
        ``(bg_pos, fg_pos, neg)`` bool ``[B, K, H*W]`` and the ``[K]`` offsets used.
    """
    b, h, w = tri.shape
    offsets = half_disk_offsets(radius)
    index, inside = offset_index(h, w, offsets, tri.device)
    li = tri.flatten(1).unsqueeze(1)  # [B, 1, HW]
    lj = tri.flatten(1)[:, index]  # [B, K, HW]
    valid = (li != IGNORE) & (lj != IGNORE) & inside.unsqueeze(0)
    same = li == lj
    return valid & same & (li == 0), valid & same & (li == 1), valid & ~same, offsets
