"""The static PNG grid of ``avs inspect`` and ``evaluate``: the first annotated frame of chosen
videos, every map of :data:`GRID` that exists, each captioned with its IoU (evaluate's rules)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from avs_core.config import PathsParams
from avs_core.explore.scores import (
    STAGES,
    frame_scores,
    present_stages,
    probabilities,
    read_block,
    read_stage,
    split_info,
)
from avs_core.maps import minmax

GRID = ("coarse_av", "cam", "c2am", "saliency", "wsavs_eq6", "pamr_input", "pamr", "random_walk", "crf", "seg_pseudo")
TILE = 112
CHUNK = 64  # videos read at a time


def _colour(m: np.ndarray) -> np.ndarray:
    return cv2.applyColorMap((np.clip(m, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]


def _tile(img: np.ndarray, caption: str) -> np.ndarray:
    t = cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_NEAREST).copy()
    cv2.rectangle(t, (0, 0), (TILE, 14), (0, 0, 0), -1)
    cv2.putText(t, caption[:18], (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return t


def render(split: str, ids: list[str] | None, worst: int, best: int, out_dir: Path, paths: PathsParams,
           root: Path = Path(".")) -> Path:
    """Write the PNG grid ``{out_dir}/{split}.png`` (first annotated frame of the ``worst`` and
    ``best`` videos by the last map in :data:`GRID`, or of ``ids``); returns its path."""
    info = split_info(root, split, paths)
    present = present_stages(root, split, info.ids, paths)
    columns = [m for m, ok in zip(STAGES, present) if ok and m.name in GRID]
    if not columns:
        raise SystemExit(f"no map outputs found for split '{split}'; run `dvc repro` first")
    annotated = info.annotated
    ranking = columns[-1]
    iou = np.full(len(info.ids), np.nan)
    for start in range(0, len(info.ids), CHUNK):  # bounded memory: the ranking map, a chunk at a time
        stop = min(start + CHUNK, len(info.ids))
        masks = read_block(root, split, start, stop, paths)["masks"]
        maps = read_stage(root, ranking, split, start, stop, paths)
        rows = np.flatnonzero(annotated[start:stop].any(1))
        first = annotated[start:stop][rows].argmax(1)
        if len(rows):
            iou[start + rows] = frame_scores(probabilities(maps[rows, first], ranking.rule, masks.shape[-2:]),
                                             masks[rows, first])[0]
    v_idx = np.flatnonzero(~np.isnan(iou))
    iou = iou[v_idx]
    if ids:
        missing = sorted(set(ids) - set(info.ids))
        if missing:
            raise SystemExit(f"unknown video id(s) in split '{split}': {', '.join(missing)}")
        chosen = [info.ids.index(i) for i in ids]
    else:
        order = np.argsort(iou, kind="stable")
        chosen = [int(v_idx[i]) for i in list(order[:worst]) + list(order[::-1][:best])]
    rows = []
    for v in chosen:
        k = int(annotated[v].argmax()) if annotated[v].any() else 0
        block = read_block(root, split, v, v + 1, paths)
        gt = block["masks"][0, k].astype(np.float32)
        tiles = [_tile(block["frames"][0, k].transpose(1, 2, 0), f"{info.ids[v][:10]} f{k + 1}"),
                 _tile(np.repeat(gt[:, :, None] * 255, 3, 2).astype(np.uint8), "ground truth")]
        for m in columns:
            raw = read_stage(root, m, split, v, v + 1, paths)[0, k].astype(np.float32)
            score = frame_scores(probabilities(raw[None], m.rule, gt.shape), gt[None])[0][0] \
                if annotated[v, k] else float("nan")
            shown = minmax(torch.from_numpy(raw)[None])[0].numpy() if m.rule == "minmax" else raw
            tiles.append(_tile(_colour(shown), f"{m.name} {score:.2f}"))
        rows.append(np.concatenate(tiles, axis=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{split}.png"
    ok, buf = cv2.imencode(".png", np.concatenate(rows, axis=0)[:, :, ::-1])
    png.write_bytes(buf.tobytes())
    return png
