"""Scores of stored maps against ground truth. Evaluation only: the training code paths never
import this module (``tests/test_supervision.py`` checks that)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from avs_core.config import PathsParams
from avs_core.maps import Rule, score_map_blocks
from avs_core.scored import of_stage
from avs_core.store import StoreError, atomic_write_json, open_h5, read_strings, require_finite


def score_stored_maps(maps_path: str | Path, key: str, split: str, rule: Rule,
                      prepared_dir: Path, block_frames: int = 200, batch_frames: int = 20,
                      keep_frames: bool = False) -> dict:
    """Score dataset ``key`` (``[V, T, S, S]``) of ``maps_path`` on the annotated frames of ``split``.

    Frames are taken in video order, so on fully annotated splits (S4 val/test, MS3) the official
    batches of 20 frames are 4 whole videos. Maps and masks are read and scored in blocks of
    ``block_frames`` annotated frames, so memory does not grow with the split. ``keep_frames``:
    see :func:`~avs_core.maps.score_map_blocks`.
    """
    with open_h5(maps_path) as f, open_h5(Path(prepared_dir) / f"{split}.h5") as g:
        ids = read_strings(f["ids"])
        if ids != read_strings(g["ids"]):
            raise StoreError(f"{maps_path} and the prepared {split} split list different videos; re-run `dvc repro`")
        annotated = g["annotated"][()]
        block = max(batch_frames, block_frames // batch_frames * batch_frames)  # whole official batches
        blocks = _annotated_blocks(f[key], g["masks"], annotated, ids, block, f"'{key}' of {maps_path}")
        return score_map_blocks(blocks, rule, batch_frames, keep_frames)


def _annotated_blocks(maps_ds, masks_ds, annotated: np.ndarray, ids: list[str], block: int, what: str,
                      videos: int = 64):
    """``(maps, gt)`` of the annotated frames in blocks of exactly ``block`` frames (the last one shorter)."""
    def per_chunk():
        for s in range(0, len(annotated), videos):
            ann = annotated[s:s + videos]
            maps = maps_ds[s:s + videos][ann]
            require_finite(maps, np.repeat(ids[s:s + videos], ann.sum(1)).tolist(), what, "re-run the stage that writes it")
            yield maps, masks_ds[s:s + videos][ann].astype(np.float32)

    return _rebatch(per_chunk(), block)


def score_objectness(maps_path: str | Path, key: str, objects_path: str | Path, rule: Rule,
                     videos: int = 64) -> dict[str, float]:
    """Score ``key`` of ``maps_path`` on *every* frame against the masks of all objects (silent ones
    included) from the synthetic dataset's ``diagnostics/{split}.h5``: does the map find objects?"""
    with open_h5(maps_path) as f, open_h5(objects_path) as g:
        ids = read_strings(f["ids"])
        where = {v: i for i, v in enumerate(read_strings(g["ids"]))}
        missing = [v for v in ids if v not in where]
        if missing:
            raise StoreError(f"{objects_path} lacks videos {missing[:3]} of {maps_path}; re-run `dvc repro`")

        def blocks():
            for s in range(0, len(ids), videos):
                maps = f[key][s:s + videos]
                objects = np.stack([g["objects"][where[v]] for v in ids[s:s + videos]])
                yield maps.reshape(-1, *maps.shape[2:]), objects.reshape(-1, *objects.shape[2:]).astype(np.float32)

        return score_map_blocks(_rebatch(blocks(), 1000), rule)


def _rebatch(blocks, size: int):
    """Blocks of exactly ``size`` frames (the last one shorter), as :func:`score_map_blocks` needs."""
    maps_buf, gt_buf, held = [], [], 0
    for maps, gt in blocks:
        maps_buf.append(maps)
        gt_buf.append(gt)
        held += len(maps)
        while held >= size:
            m, g = np.concatenate(maps_buf), np.concatenate(gt_buf)
            yield m[:size], g[:size]
            maps_buf, gt_buf, held = [m[size:]], [g[size:]], held - size
    if held:
        yield np.concatenate(maps_buf), np.concatenate(gt_buf)


def write_quality(stage: str, paths: PathsParams, objects_path: str | Path | None = None) -> dict:
    """Score ``stage``'s outputs (:func:`avs_core.scored.of_stage`) on the annotated *training*
    frames and write ``<paths.reports>/<stage>/quality.json``.

    This runs after the stage's maps are written; nothing it reads feeds training. Where the
    synthetic dataset's all-object masks exist (``objects_path``), each map also gets
    ``<name>_objectness``: its score against every object on every training frame. Outputs the
    run does not have (the CAM on MS3, which has no categories) are left out.
    """
    log = logging.getLogger(f"stages.{stage}")
    report = {}
    for s in of_stage(stage):
        path = s.file(paths, "train")
        with open_h5(path) as f:
            if s.key not in f:
                continue
        report[s.name] = score_stored_maps(path, s.key, "train", s.rule, paths["prepared"])
        log.info("pseudo-mask quality (annotated train frames) %-12s mIoU %.4f  F %.4f", s.name,
                 report[s.name]["miou"], report[s.name]["fscore"])
        if objects_path is not None and Path(objects_path).is_file():
            obj = report[f"{s.name}_objectness"] = score_objectness(path, s.key, objects_path, s.rule)
            log.info("objectness (all objects, all train frames)  %-12s mIoU %.4f  F %.4f", s.name, obj["miou"],
                     obj["fscore"])
    atomic_write_json(paths["reports"] / stage / "quality.json", report)
    return report
