"""Logging, progress bars and seeding shared by the stages."""
from __future__ import annotations

import logging
import math
import os
import random
import sys
from typing import Iterable, TypeVar

import numpy as np
from tqdm import tqdm

T = TypeVar("T")


class DivergedError(RuntimeError):
    """A training loss became NaN or inf."""


class NotLearnedError(RuntimeError):
    """A training stage ended at its chance level and ``base.on_chance`` is ``error`` (``avs_core.learning``)."""


def require_finite_loss(value: float, where: str, lr_key: str) -> float:
    """Stop a training loop at the first non-finite loss instead of writing NaN weights and maps."""
    if not math.isfinite(value):
        raise DivergedError(f"{where}: the loss became {value}; training diverged and nothing was written "
                            f"(lower {lr_key}, or check the inputs with `avs inspect`)")
    return value


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with timestamps; idempotent."""
    root = logging.getLogger()
    if not any(getattr(h, "_avs", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._avs = True
        root.addHandler(handler)
    root.setLevel(level)


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """A tqdm bar on stderr that stays quiet when stderr is not a terminal (CI, DVC queue logs)."""
    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, disable=None, mininterval=1.0,
                dynamic_ncols=True)


def seed_everything(seed: int, with_torch: bool = True) -> None:
    """Seed Python, NumPy and (``with_torch``) torch, and ask torch for deterministic kernels.
    torch is imported here, not at module level, so torch-free processes (the ``manifest`` stage,
    CRF workers) start without it."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if not with_torch:
        return
    import torch

    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # the public call also imports torch._inductor.config to flag compiled code deterministic:
    # 1.5-2 s in every stage process, and nothing here compiles. The eager flag is the same one; the
    # public call stands in where inductor is loaded anyway or a torch release renames the private one.
    eager_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if eager_flag is None or "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        eager_flag(True, warn_only=True)
