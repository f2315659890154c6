"""Scores of stored maps against ground truth. Evaluation only: the training code paths never
import this module (``tests/test_supervision.py`` checks that)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from avs_core.data.splits import PREPARED_DIR, load_masks
from avs_core.maps import Rule, score_maps
from avs_core.store import (
    StoreError,
    atomic_write_json,
    open_h5,
    read_strings,
    require_finite,
)


def score_stored_maps(maps_path: str | Path, key: str, split: str, rule: Rule,
                      prepared_dir: Path = PREPARED_DIR) -> dict[str, float]:
    """Score dataset ``key`` (``[V, T, S, S]``) of ``maps_path`` on the annotated frames of ``split``.

    Frames are taken in video order, so on fully annotated splits (S4 val/test, MS3) the official
    batches of 20 frames are 4 whole videos.
    """
    masks, annotated = load_masks(split, prepared_dir)
    with open_h5(maps_path) as f:
        with open_h5(prepared_dir / f"{split}.h5") as g:
            if read_strings(f["ids"]) != read_strings(g["ids"]):
                raise StoreError(f"{maps_path} and the prepared {split} split list different videos; re-run `dvc repro`")
        maps = f[key][()]
        require_finite(maps, read_strings(f["ids"]), f"'{key}' of {maps_path}", "re-run the stage that writes it")
    return score_maps(maps[annotated], masks[annotated].astype(np.float32), rule)


def write_quality(stage: str, maps_dir: str | Path, entries: list[tuple[str, str, str]]) -> dict:
    """Score a stage's maps on the annotated *training* frames and write ``reports/<stage>/quality.json``.

    This runs after the stage's maps are written; nothing it reads feeds training.

    Args:
        entries: ``(name, dataset, rule)`` for each map the stage produced.
    """
    log = logging.getLogger(f"stages.{stage}")
    report = {}
    for name, key, rule in entries:
        report[name] = score_stored_maps(Path(maps_dir) / "train.h5", key, "train", rule)
        log.info("pseudo-mask quality (annotated train frames) %-10s mIoU %.4f  F %.4f", name,
                 report[name]["miou"], report[name]["fscore"])
    atomic_write_json(f"reports/{stage}/quality.json", report)
    return report
