"""Checkpoints: atomic writes, ``weights_only`` loads, and resumable training state."""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch

from avs_core.store import atomic_path

log = logging.getLogger(__name__)


def save(path: str | Path, obj: dict[str, Any]) -> None:
    """``torch.save`` to a temp file, then rename (an interrupted save leaves the old file)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling code (``weights_only=True``)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


class Resumer:
    """Training state (``avs_core.engine.loop``'s, at each log point) kept outside DVC's outputs,
    so an interrupted stage can continue.

    The state is only reused when it was written with the same ``fingerprint`` (the stage's
    params); it is deleted once the stage has finished.
    """

    def __init__(self, path: str | Path, fingerprint: str, enabled: bool):
        self.path, self.fingerprint, self.enabled = Path(path), fingerprint, enabled

    def restore(self) -> dict[str, Any] | None:
        if not (self.enabled and self.path.is_file()):
            return None
        state = load(self.path)
        if state.get("fingerprint") != self.fingerprint:
            log.warning("%s was written with other params; starting from scratch", self.path)
            return None
        log.info("resuming from %s (step %d done)", self.path, state["step"])
        return state

    def keep(self, state: dict[str, Any]) -> None:
        save(self.path, {**state, "fingerprint": self.fingerprint})

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)
