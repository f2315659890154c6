"""Learning-rate schedules as per-step multipliers of the base lr (``torch.optim.lr_scheduler.LambdaLR``)."""
from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.02) -> float:
    """Linear warm-up over ``warmup`` steps to 1, then cosine decay to ``floor`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(opt: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Step it once per optimiser step; its state dict resumes with the optimiser's."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, total, warmup))
