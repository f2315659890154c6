"""C^2AM / CCAM contrastive losses (``CVI-SZU/CCAM WSSS/core/loss.py``) on pooled features ``[N, C]``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

_CLAMP = (0.0005, 0.9995)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()).clamp(*_CLAMP)


def c2am_negative_loss(bg: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """``SimMinLoss``: mean over all N x N (bg_i, fg_j) pairs of -log(1 - cos)."""
    return -torch.log(1 - _cos(bg, fg)).mean()


def c2am_positive_loss(feats: torch.Tensor, alpha: float = 0.25) -> torch.Tensor:
    """``SimMaxLoss``: -log(cos) of every pair, the k-th most similar in each row weighted exp(-alpha (k-1))."""
    sim = _cos(feats, feats)
    loss = (-torch.log(sim)).clamp_min(0)
    _, order = sim.sort(descending=True, dim=1)
    _, rank = order.sort(dim=1)
    weights = torch.exp(-(rank - 1).float() * alpha)
    return (loss * weights).mean()


def c2am_loss(fg: torch.Tensor, bg: torch.Tensor, alpha: float = 0.25) -> torch.Tensor:
    """Total CCAM objective: SimMax(fg) + SimMin(bg, fg) + SimMax(bg), unweighted."""
    return c2am_positive_loss(fg, alpha) + c2am_negative_loss(bg, fg) + c2am_positive_loss(bg, alpha)
