"""Flat indices of pixel neighbours at fixed offsets, with clamped (replicate) or masked borders."""
from __future__ import annotations

import torch


def offset_index(h: int, w: int, offsets: list[tuple[int, int]], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the neighbour at each offset, clamped into the image, and an in-image mask.

    Returns:
        ``index [K, H*W]`` int64 and ``inside [K, H*W]`` bool (False where the offset leaves the image).
    """
    ys = torch.arange(h, device=device).view(h, 1).expand(h, w).reshape(-1)
    xs = torch.arange(w, device=device).view(1, w).expand(h, w).reshape(-1)
    dy = torch.tensor([o[0] for o in offsets], device=device).view(-1, 1)
    dx = torch.tensor([o[1] for o in offsets], device=device).view(-1, 1)
    ny, nx = ys + dy, xs + dx
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    index = ny.clamp(0, h - 1) * w + nx.clamp(0, w - 1)
    return index, inside


