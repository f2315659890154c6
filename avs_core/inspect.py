"""Render every map of the pipeline side by side for chosen videos: ``python -m avs_core.inspect``.

Reads only the HDF5 outputs of the stages (whatever exists), writes a PNG grid per split and a
small static HTML page. Per frame: image, ground truth, coarse AV map, CAM, C^2AM, saliency, Eq. 6,
PAMR input, PAMR, random walk, CRF mask and the final prediction, each captioned with its IoU
(maps thresholded as ``avs_core.maps`` describes).

Examples::

    python -m avs_core.inspect --split test --worst 4
    python -m avs_core.inspect --split train --ids abc123 def456 --out reports/inspect
"""
from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from avs_core.maps import minmax, prob_to_logits, resize_maps, to_probability
from avs_core.metrics import frame_iou
from avs_core.store import atomic_write_text, open_h5, read_strings

# (column title, file pattern, dataset, rule)
COLUMNS = [
    ("coarse AV", "data/align/{split}.h5", "fused", "minmax"),
    ("CAM", "data/pseudo/c2am/{split}.h5", "cam", "prob"),
    ("C2AM", "data/pseudo/c2am/{split}.h5", "c2am", "prob"),
    ("saliency", "data/pseudo/saliency/{split}.h5", "saliency", "prob"),
    ("Eq. 6", "data/pseudo/saliency/{split}.h5", "eq6", "prob"),
    ("PAMR input", "data/pseudo/pamr/{split}.h5", "fused", "prob"),
    ("PAMR", "data/pseudo/pamr/{split}.h5", "pamr", "prob"),
    ("random walk", "data/pseudo/affinity/{split}.h5", "walk", "prob"),
    ("CRF", "data/pseudo/crf/{split}.h5", "mask", "prob"),
    ("prediction", "data/seg/pseudo/{split}.h5", "prob", "prob"),
]
TILE = 112


def _colour(m: np.ndarray) -> np.ndarray:
    return cv2.applyColorMap((np.clip(m, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]


def _tile(img: np.ndarray, caption: str) -> np.ndarray:
    t = cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_NEAREST).copy()
    cv2.rectangle(t, (0, 0), (TILE, 14), (0, 0, 0), -1)
    cv2.putText(t, caption[:18], (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return t


def load_columns(split: str, root: Path) -> list[tuple[str, np.ndarray, str]]:
    """The maps that exist for ``split``: ``(title, [V, T, S, S] array, rule)``."""
    out = []
    for title, pattern, key, rule in COLUMNS:
        path = root / pattern.format(split=split)
        if path.is_file():
            with open_h5(path) as f:
                if key in f:
                    out.append((title, f[key][()], rule))
    return out


def frame_scores(maps: np.ndarray, rule: str, gt: torch.Tensor) -> np.ndarray:
    """IoU of every frame of ``maps`` [N, S, S] against ``gt`` [N, H0, W0]."""
    prob = to_probability(resize_maps(torch.from_numpy(maps).float(), tuple(gt.shape[-2:])), rule)
    return frame_iou(prob_to_logits(prob), gt).numpy()


def render(split: str, ids: list[str] | None, worst: int, best: int, out_dir: Path, root: Path = Path(".")) -> Path:
    """Write ``{out_dir}/{split}.png`` and ``{out_dir}/{split}.html``; returns the PNG path."""
    with open_h5(root / f"data/prepared/{split}.h5") as f:
        all_ids = read_strings(f["ids"])
        frames, masks, annotated = f["frames"][()], f["masks"][()], f["annotated"][()]
    columns = load_columns(split, root)
    if not columns:
        raise SystemExit(f"no map outputs found for split '{split}'; run `dvc repro` first")
    ranking = columns[-1]
    v_idx = np.flatnonzero(annotated.any(1))
    gt_first = torch.from_numpy(masks[v_idx, annotated[v_idx].argmax(1)]).float()
    first = annotated[v_idx].argmax(1)
    iou = frame_scores(ranking[1][v_idx, first], ranking[2], gt_first)
    if ids:
        missing = sorted(set(ids) - set(all_ids))
        if missing:
            raise SystemExit(f"unknown video id(s) in split '{split}': {', '.join(missing)}")
        chosen = [all_ids.index(i) for i in ids]
    else:
        order = np.argsort(iou)
        chosen = [int(v_idx[i]) for i in list(order[:worst]) + list(order[::-1][:best])]
    rows, cells = [], []
    for v in chosen:
        k = int(annotated[v].argmax()) if annotated[v].any() else 0
        gt = masks[v, k].astype(np.float32)
        img = frames[v, k].transpose(1, 2, 0)
        tiles = [_tile(img, f"{all_ids[v][:10]} f{k + 1}"), _tile(np.repeat(gt[:, :, None] * 255, 3, 2).astype(np.uint8), "ground truth")]
        row_cells = []
        for title, maps, rule in columns:
            m = maps[v, k].astype(np.float32)
            score = frame_scores(m[None], rule, torch.from_numpy(gt)[None])[0] if annotated[v, k] else float("nan")
            shown = minmax(torch.from_numpy(m)[None])[0].numpy() if rule == "minmax" else m
            tiles.append(_tile(_colour(shown), f"{title} {score:.2f}"))
            row_cells.append(f"<td>{html.escape(title)}<br>IoU {score:.3f}</td>")
        rows.append(np.concatenate(tiles, axis=1))
        cells.append(f"<tr><td>{html.escape(all_ids[v])} (frame {k + 1})</td>{''.join(row_cells)}</tr>")
    grid = np.concatenate(rows, axis=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{split}.png"
    ok, buf = cv2.imencode(".png", grid[:, :, ::-1])
    png.write_bytes(buf.tobytes())
    page = (f"<html><head><meta charset='utf-8'><title>pseudo masks: {split}</title></head><body>"
            f"<h1>{split}: {len(chosen)} videos</h1><img src='{png.name}'>"
            f"<table border=1>{''.join(cells)}</table></body></html>")
    atomic_write_text(out_dir / f"{split}.html", page)
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m avs_core.inspect", description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="train", choices=["train", "val", "test"])
    ap.add_argument("--ids", nargs="*", help="video ids (default: the worst and best by the last map)")
    ap.add_argument("--worst", type=int, default=4)
    ap.add_argument("--best", type=int, default=4)
    ap.add_argument("--out", default="reports/inspect", type=Path)
    args = ap.parse_args(argv)
    png = render(args.split, args.ids, args.worst, args.best, args.out)
    print(png, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
