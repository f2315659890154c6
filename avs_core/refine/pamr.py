"""PAMR, pixel-adaptive mask refinement (Araslanov & Roth 2020; 1-stage-wseg ``models/mods/pamr.py``).

Affinity kappa(i, j) = -|I_i - I_j| / (1e-8 + 0.1 sigma_i) per colour channel, where sigma_i is the
unbiased std over the 3x3 neighbourhood at every dilation (centre counted once per dilation),
averaged over channels, softmax over the 8 neighbours at each dilation (no self-loop). The mask is
propagated ``m_i <- sum_j a_ij m_j`` for ``iters`` iterations. Borders replicate.

Unlike the reference, the neighbours are slices of one replicate-padded copy (padded by the
largest dilation, which clamps exactly like a per-dilation pad) and the propagation is a
multiply-add per offset, instead of a padded conv per dilation; the arithmetic is the same
(``bench/`` compares the speed; ``tests/test_refine.py`` checks the golden vectors of the reference).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_RING = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _offsets(dilations, centre: bool) -> list[tuple[int, int]]:
    ring = ([(0, 0)] if centre else []) + _RING
    return [(dy * d, dx * d) for d in dilations for dy, dx in ring]


def _shifted(x: torch.Tensor, offsets: list[tuple[int, int]]) -> list[torch.Tensor]:
    """``x [B, C, H, W]`` -> the value at each offset, borders replicated: K views ``[B, C, H, W]``."""
    h, w = x.shape[-2:]
    pad = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    xp = F.pad(x, [pad] * 4, mode="replicate")
    return [xp[..., pad + dy:pad + dy + h, pad + dx:pad + dx + w] for dy, dx in offsets]


def pamr_affinity(image: torch.Tensor, dilations=(1, 2, 4, 8, 12, 24)) -> torch.Tensor:
    """Affinity ``[B, K, H, W]`` to the K = 8 * len(dilations) neighbours of ``_offsets(dilations, False)``."""
    x_std = torch.stack(_shifted(image, _offsets(dilations, centre=True)), 2).std(dim=2, keepdim=True)  # [B, C, 1, H, W]
    diff = (image.unsqueeze(2) - torch.stack(_shifted(image, _offsets(dilations, centre=False)), 2)).abs()  # [B, C, K, H, W]
    kappa = (-diff / (1e-8 + 0.1 * x_std)).mean(dim=1)  # [B, K, H, W]
    return F.softmax(kappa, dim=1)


def pamr(image: torch.Tensor, masks: torch.Tensor, iters: int = 10, dilations=(1, 2, 4, 8, 12, 24)) -> torch.Tensor:
    """Refine soft masks with the image's local affinities.

    Args:
        image: ``[B, 3, H, W]`` float in [0, 1].
        masks: ``[B, C, h, w]`` soft masks; resized bilinearly (align_corners=True) to H x W first.
        iters: propagation steps.
        dilations: neighbourhood dilations.

    Returns:
        ``[B, C, H, W]`` refined masks.
    """
    h, w = image.shape[-2:]
    masks = F.interpolate(masks.float(), size=(h, w), mode="bilinear", align_corners=True)
    aff = pamr_affinity(image.float(), dilations).unsqueeze(2).unbind(1)  # K x [B, 1, H, W]
    ring = _offsets(dilations, centre=False)
    for _ in range(iters):
        views = _shifted(masks, ring)
        out = views[0] * aff[0]
        for view, a in zip(views[1:], aff[1:]):
            out.addcmul_(view, a)
        masks = out
    return masks


def refine_frames(frames: np.ndarray, maps: np.ndarray, size: int, iters: int,
                  dilations=(1, 2, 4, 8, 12, 24)) -> np.ndarray:
    """PAMR of foreground maps on their frames, at a ``size`` x ``size`` grid.

    Args:
        frames: ``[N, 3, S, S]`` uint8.
        maps: ``[N, S, S]`` float foreground maps in [0, 1].

    Returns:
        ``[N, S, S]`` float32 in [0, 1], the refined foreground upsampled back to S.
    """
    s = frames.shape[-1]
    image = F.interpolate(torch.from_numpy(frames).float() / 255.0, size=(size, size), mode="bilinear",
                          align_corners=False)  # [N, 3, size, size]
    m = F.interpolate(torch.from_numpy(maps).float()[:, None], size=(size, size), mode="bilinear",
                      align_corners=False)  # [N, 1, size, size]
    out = pamr(image, torch.cat([1 - m, m], dim=1), iters, tuple(dilations))[:, 1:]
    return F.interpolate(out, size=(s, s), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()
