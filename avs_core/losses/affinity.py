"""AffinityNet loss (``psa train_aff.py``): bg-positive / 4 + fg-positive / 4 + negative / 2."""
from __future__ import annotations

import torch


def affinity_loss(aff: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Args: ``aff`` predicted affinities in (0, 1]; the three label masks of the same shape (bool).
    Each term is normalised by its own pair count over the whole batch."""
    bg, fg, ng = bg_pos.float(), fg_pos.float(), neg.float()
    bg_loss = (-bg * torch.log(aff + 1e-5)).sum() / (bg.sum() + 1e-5)
    fg_loss = (-fg * torch.log(aff + 1e-5)).sum() / (fg.sum() + 1e-5)
    neg_loss = (-ng * torch.log(1 + 1e-5 - aff)).sum() / (ng.sum() + 1e-5)
    return bg_loss / 4 + fg_loss / 4 + neg_loss / 2
