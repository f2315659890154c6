"""Did a trained stage learn anything? Checks of a measured value against its chance level.

Each training stage ends with :func:`report`: the checks go to ``reports/<stage>/learning.json``
(``{"stage", "learned", "checks": [...]}``), every failed one is logged as a WARNING, and
``evaluate`` prints a line above its table naming each stage that failed. With
``base.on_chance: error`` a failed check stops the stage instead (:class:`NotLearnedError`,
raised before the outputs are moved into place, so nothing is passed downstream).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avs_core.runtime import NotLearnedError
from avs_core.store import atomic_write_json


@dataclass(frozen=True)
class Check:
    """``value`` must be above ``threshold`` (or below it when ``lower_is_better``).

    ``chance`` is what a model that learned nothing scores; ``threshold`` adds the margin.
    """

    name: str
    value: float
    chance: float
    threshold: float
    lower_is_better: bool = False

    @property
    def passed(self) -> bool:
        if not np.isfinite(self.value):
            return False
        return bool(self.value < self.threshold if self.lower_is_better else self.value > self.threshold)

    def describe(self) -> str:
        side = "below" if self.lower_is_better else "above"
        return (f"{self.name} = {self.value:.4f} is not {side} {self.threshold:.4f} "
                f"(chance level {self.chance:.4f})")


def loss_check(name: str, final: float, chance: float, margin: float = 0.95) -> Check:
    """The final training loss must be below ``margin`` x the loss of a model that learned nothing."""
    return Check(name, final, chance, margin * chance, lower_is_better=True)


def score_check(name: str, value: float, chance: float, factor: float = 1.5) -> Check:
    """A score (retrieval, mIoU, accuracy) must exceed ``factor`` x its chance level."""
    return Check(name, value, chance, factor * chance)


def mask_chance_miou(masks: np.ndarray) -> float:
    """mIoU of predicting every pixel as foreground: ``mean(|gt| / |frame|)`` over ``[N, H, W]`` masks."""
    return float(masks.reshape(len(masks), -1).astype(np.float64).mean(1).mean()) if len(masks) else float("nan")


def report(stage: str, checks: list[Check], on_chance: str, path: str | Path, curves: dict | None = None) -> dict:
    """Log, write ``path`` (JSON, with the loss ``curves`` if given) and, with ``on_chance == "error"``,
    raise if any check failed."""
    log = logging.getLogger(f"stages.{stage}")
    failed = [c for c in checks if not c.passed]
    for c in failed:
        log.warning("NOTHING LEARNED? %s: %s", stage, c.describe())
    doc = {"stage": stage, "learned": not failed,
           "checks": [{"name": c.name, "value": float(c.value), "chance": float(c.chance), "threshold": float(c.threshold),
                       "lower_is_better": bool(c.lower_is_better), "passed": bool(c.passed)} for c in checks],
           "curves": curves or {}}
    atomic_write_json(path, doc)
    if failed and on_chance == "error":
        raise NotLearnedError(f"{stage} learned nothing measurable: " + "; ".join(c.describe() for c in failed)
                              + " (base.on_chance=error; set it to warn to keep the outputs anyway)")
    if not failed:
        log.info("learning checks passed: %s", ", ".join(f"{c.name} {c.value:.3f} (chance {c.chance:.3f})"
                                                          for c in checks))
    return doc


def failed_stages(paths) -> list[tuple[str, list[str]]]:
    """``(stage, [failed check descriptions])`` for every existing learning report that failed."""
    out = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        bad = [f"{c['name']} {c['value']:.3f} vs chance {c['chance']:.3f}" for c in doc["checks"] if not c["passed"]]
        if bad:
            out.append((doc["stage"], bad))
    return out
