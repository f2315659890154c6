"""Scores of stored maps against ground truth. Evaluation only: the training code paths never
import this module (``tests/test_supervision.py`` checks that)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from avs_core.data.splits import PREPARED_DIR
from avs_core.maps import Rule, score_map_blocks
from avs_core.store import StoreError, atomic_write_json, open_h5, read_strings, require_finite


def score_stored_maps(maps_path: str | Path, key: str, split: str, rule: Rule,
                      prepared_dir: Path = PREPARED_DIR, block_frames: int = 1000) -> dict[str, float]:
    """Score dataset ``key`` (``[V, T, S, S]``) of ``maps_path`` on the annotated frames of ``split``.

    Frames are taken in video order, so on fully annotated splits (S4 val/test, MS3) the official
    batches of 20 frames are 4 whole videos. Maps and masks are read and scored in blocks of
    ``block_frames`` annotated frames, so memory does not grow with the split.
    """
    with open_h5(maps_path) as f, open_h5(prepared_dir / f"{split}.h5") as g:
        ids = read_strings(f["ids"])
        if ids != read_strings(g["ids"]):
            raise StoreError(f"{maps_path} and the prepared {split} split list different videos; re-run `dvc repro`")
        annotated = g["annotated"][()]
        blocks = _annotated_blocks(f[key], g["masks"], annotated, ids, block_frames, f"'{key}' of {maps_path}")
        return score_map_blocks(blocks, rule)


def _annotated_blocks(maps_ds, masks_ds, annotated: np.ndarray, ids: list[str], block: int, what: str,
                      videos: int = 64):
    """``(maps, gt)`` of the annotated frames in blocks of exactly ``block`` frames (the last one shorter)."""
    maps_buf, gt_buf, held = [], [], 0
    for s in range(0, len(annotated), videos):
        ann = annotated[s:s + videos]
        maps = maps_ds[s:s + videos][ann]
        require_finite(maps, np.repeat(ids[s:s + videos], ann.sum(1)).tolist(), what, "re-run the stage that writes it")
        maps_buf.append(maps)
        gt_buf.append(masks_ds[s:s + videos][ann])
        held += len(maps)
        while held >= block:
            maps_all, gt_all = np.concatenate(maps_buf), np.concatenate(gt_buf)
            yield maps_all[:block], gt_all[:block].astype(np.float32)
            maps_buf, gt_buf, held = [maps_all[block:]], [gt_all[block:]], held - block
    if held:
        yield np.concatenate(maps_buf), np.concatenate(gt_buf).astype(np.float32)


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
