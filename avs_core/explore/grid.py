"""The static PNG grid of ``avs inspect`` and ``evaluate``: the first annotated frame of chosen
videos, every map of :data:`GRID` that exists, each captioned with its IoU (evaluate's rules)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from avs_core.explore.scores import STAGES, frame_scores, present_stages, probabilities, split_info
from avs_core.maps import minmax
from avs_core.store import open_h5

GRID = ("coarse_av", "cam", "c2am", "saliency", "wsavs_eq6", "pamr_input", "pamr", "random_walk", "crf", "seg_pseudo")
TILE = 112


def _colour(m: np.ndarray) -> np.ndarray:
    return cv2.applyColorMap((np.clip(m, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]


def _tile(img: np.ndarray, caption: str) -> np.ndarray:
    t = cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_NEAREST).copy()
    cv2.rectangle(t, (0, 0), (TILE, 14), (0, 0, 0), -1)
    cv2.putText(t, caption[:18], (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return t


def render(split: str, ids: list[str] | None, worst: int, best: int, out_dir: Path, root: Path = Path(".")) -> Path:
    """Write the PNG grid ``{out_dir}/{split}.png`` (first annotated frame of the ``worst`` and
    ``best`` videos by the last map in :data:`GRID`, or of ``ids``); returns its path."""
    info = split_info(root, split)
    present = present_stages(root, split, info.ids)
    columns = [m for m, ok in zip(STAGES, present) if ok and m.name in GRID]
    if not columns:
        raise SystemExit(f"no map outputs found for split '{split}'; run `dvc repro` first")
    with open_h5(root / f"data/prepared/{split}.h5") as f:
        frames, masks = f["frames"][()], f["masks"][()]
    maps = {}
    for m in columns:
        with open_h5(root / m.path.format(split=split)) as f:
            maps[m.name] = f[m.key][()]
    annotated = info.annotated
    v_idx = np.flatnonzero(annotated.any(1))
    first = annotated[v_idx].argmax(1)
    ranking = columns[-1]
    iou, _ = frame_scores(probabilities(maps[ranking.name][v_idx, first], ranking.rule, masks.shape[-2:]),
                          masks[v_idx, first])
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
        gt = masks[v, k].astype(np.float32)
        tiles = [_tile(frames[v, k].transpose(1, 2, 0), f"{info.ids[v][:10]} f{k + 1}"),
                 _tile(np.repeat(gt[:, :, None] * 255, 3, 2).astype(np.uint8), "ground truth")]
        for m in columns:
            raw = maps[m.name][v, k].astype(np.float32)
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
