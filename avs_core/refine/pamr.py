"""PAMR, pixel-adaptive mask refinement (Araslanov & Roth 2020; 1-stage-wseg ``models/mods/pamr.py``).

Affinity kappa(i, j) = -|I_i - I_j| / (1e-8 + 0.1 sigma_i) per colour channel, where sigma_i is the
unbiased std over the 3x3 neighbourhood at every dilation (centre counted once per dilation),
averaged over channels, softmax over the 8 neighbours at each dilation (no self-loop). The mask is
propagated ``m_i <- sum_j a_ij m_j`` for ``iters`` iterations. Borders replicate.

Unlike the reference, all dilations are gathered in one indexing step instead of a padded conv per
dilation; the arithmetic is the same (``bench/`` compares both).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from avs_core.refine.neighbours import gather_offsets, offset_index

_RING = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _offsets(dilations, centre: bool) -> list[tuple[int, int]]:
    ring = ([(0, 0)] if centre else []) + _RING
    return [(dy * d, dx * d) for d in dilations for dy, dx in ring]


def pamr_affinity(image: torch.Tensor, dilations=(1, 2, 4, 8, 12, 24)) -> tuple[torch.Tensor, torch.Tensor]:
    """Affinity ``[B, 1, K, H, W]`` (K = 8 * len(dilations)) and the neighbour index used to apply it."""
    b, c, h, w = image.shape
    nb_index, _ = offset_index(h, w, _offsets(dilations, centre=False), image.device)
    std_index, _ = offset_index(h, w, _offsets(dilations, centre=True), image.device)
    x_std = gather_offsets(image, std_index).std(dim=2, keepdim=True)  # [B, C, 1, H, W]
    diff = (image.unsqueeze(2) - gather_offsets(image, nb_index)).abs()  # [B, C, K, H, W]
    kappa = (-diff / (1e-8 + 0.1 * x_std)).mean(dim=1, keepdim=True)
    return F.softmax(kappa, dim=2), nb_index


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
    aff, index = pamr_affinity(image.float(), dilations)
    for _ in range(iters):
        masks = (gather_offsets(masks, index) * aff).sum(dim=2)
    return masks
