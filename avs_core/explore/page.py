"""Write the explorer: ``index.html`` (data, script and style inline) and image sprites beside it.

Layout of ``out_dir`` (one folder, self-contained, readable from ``file://``, no server)::

    index.html                       the app and every score (JSON inline)
    media/{split}/{v:05d}_frames.jpg  the T frames of video v side by side   [tile, T*tile, 3]
    media/{split}/{v:05d}_gt.png      ground-truth contours (annotated frames) [tile, T*tile]
    media/{split}/{v:05d}_run{r}.png  every stage's map of run r, one row per stage
                                      [len(STAGES)*tile, T*tile] uint8, > 128 = the rule's mask

Maps are stored as grey levels and coloured by SVG filters in the page (heat map, mask overlay),
so the same file serves every display mode. Images load only when their video is opened.
Videos are processed ``chunk`` at a time, so memory stays flat in the split size.
"""
from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from avs_core.config import PathsParams
from avs_core.explore.scores import (
    CHAIN,
    RULE_TEXT,
    STAGES,
    display_bytes,
    frame_scores,
    present_stages,
    probabilities,
    read_block,
    read_stage,
    split_info,
)
from avs_core.runtime import progress
from avs_core.store import StoreError, atomic_dir

log = logging.getLogger(__name__)


def _png(path: Path, img: np.ndarray, ext: str = ".png") -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 6]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(buf.tobytes())


def _frames_sprite(frames: np.ndarray, tile: int) -> np.ndarray:
    """``[T, 3, S, S]`` RGB -> ``[tile, T*tile, 3]`` BGR."""
    tiles = [cv2.resize(f.transpose(1, 2, 0), (tile, tile), interpolation=cv2.INTER_AREA) for f in frames]
    return cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR)


def _contour_sprite(masks: np.ndarray, annotated: np.ndarray, tile: int) -> np.ndarray:
    """``[T, H0, W0]`` {0, 1} -> ``[tile, T*tile]`` uint8, 255 on the mask's boundary."""
    kernel = np.ones((3, 3), np.uint8)
    tiles = []
    for m, ann in zip(masks, annotated):
        small = cv2.resize(m.astype(np.uint8), (tile, tile), interpolation=cv2.INTER_NEAREST)
        edge = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, kernel) if ann else np.zeros_like(small)
        tiles.append(edge * 255)
    return np.concatenate(tiles, axis=1)


def _rounded(values: np.ndarray, keep: np.ndarray) -> list:
    return [round(float(x), 4) if k else None for x, k in zip(values, keep)]


def _split_pages(runs: list[tuple[str, Path]], split: str, media: Path, tile: int, chunk: int,
                 paths: PathsParams) -> dict:
    """Write one split's sprites; return its JSON part (videos, scores, which stages each run has)."""
    info = split_info(runs[0][1], split, paths)
    for name, root in runs[1:]:
        other = split_info(root, split, paths)
        if other.ids != info.ids:
            raise StoreError(f"'{runs[0][0]}' and '{name}' hold different {split} videos "
                             f"({len(info.ids)} vs {len(other.ids)}); compare needs runs on the same dataset")
    present = [present_stages(root, split, info.ids, paths) for _, root in runs]
    media.mkdir(parents=True, exist_ok=True)
    videos, sums = [], np.zeros((len(runs), len(STAGES)))
    counts = np.zeros(len(runs))
    n_videos = len(info.ids)
    for start in progress(range(0, n_videos, chunk), desc=f"explorer {split}"):
        stop = min(start + chunk, n_videos)
        block = read_block(runs[0][1], split, start, stop, paths)
        ann = block["annotated"]  # [n, T]
        n, t = ann.shape
        gt = block["masks"].reshape(n * t, *block["masks"].shape[2:])
        iou = np.full((len(runs), len(STAGES), n, t), np.nan)
        inv = np.full_like(iou, np.nan)
        sprites = np.zeros((len(runs), n, len(STAGES) * tile, t * tile), np.uint8)
        for r, (_, root) in enumerate(runs):
            for s, m in enumerate(STAGES):
                if not present[r][s]:
                    continue
                maps = read_stage(root, m, split, start, stop, paths)  # [n, T, h, w]
                prob = probabilities(maps.reshape(n * t, *maps.shape[2:]), m.rule, gt.shape[-2:])
                a, b = frame_scores(prob, gt)
                iou[r, s], inv[r, s] = a.reshape(n, t), b.reshape(n, t)
                shown = display_bytes(prob, tile).reshape(n, t, tile, tile)
                sprites[r, :, s * tile:(s + 1) * tile] = shown.transpose(0, 2, 1, 3).reshape(n, tile, t * tile)
                sums[r, s] += iou[r, s][ann].sum()
            counts[r] += ann.sum()
        for i in range(n):
            v = start + i
            _png(media / f"{v:05d}_frames.jpg", _frames_sprite(block["frames"][i], tile), ".jpg")
            _png(media / f"{v:05d}_gt.png", _contour_sprite(block["masks"][i], ann[i], tile))
            for r in range(len(runs)):
                _png(media / f"{v:05d}_run{r}.png", sprites[r, i])
            videos.append({
                "id": info.ids[v], "cat": info.categories[v], "ann": [int(x) for x in ann[i]],
                "iou": [[_rounded(iou[r, s, i], ann[i]) if present[r][s] else None for s in range(len(STAGES))]
                        for r in range(len(runs))],
                "inv": [[_rounded(inv[r, s, i], ann[i]) if present[r][s] else None for s in range(len(STAGES))]
                        for r in range(len(runs))],
            })
    miou = np.where(np.array(present), sums / np.maximum(counts[:, None], 1), np.nan)
    return {"videos": videos, "present": present, "frames": int(info.annotated.shape[1]),
            "miou": [[None if np.isnan(x) else round(float(x), 6) for x in row] for row in miou]}


def _static(name: str) -> str:
    return resources.files("avs_core.explore").joinpath("static", name).read_text(encoding="utf-8")


def write_explorer(runs: list[tuple[str, Path]], splits: list[str], out_dir: Path, paths: PathsParams,
                   tile: int = 112, chunk: int = 16) -> dict:
    """Write the explorer for ``runs`` (``(label, root)``; one, or two to compare, laid out as
    ``paths`` says) into ``out_dir``.

    Returns ``{"index": path of index.html, "bytes": folder size, "files": file count,
    "miou": {split: [run][stage] mean IoU over annotated frames, as evaluate computes it}}``.
    """
    if not 1 <= len(runs) <= 2:
        raise ValueError(f"the explorer shows one run or compares two, got {len(runs)}")
    data = {"runs": [label for label, _ in runs], "tile": tile, "chain": list(CHAIN),
            "stages": [{"name": m.name, "rule": m.rule, "rule_text": RULE_TEXT[m.rule], "what": m.description}
                       for m in STAGES], "splits": {}}
    with atomic_dir(out_dir) as tmp:
        for split in splits:
            data["splits"][split] = _split_pages(runs, split, tmp / "media" / split, tile, chunk, paths)
        payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
        page = (_static("explorer.html").replace("/*STYLE*/", _static("explorer.css"))
                .replace("/*SCRIPT*/", _static("explorer.js")).replace("/*DATA*/", payload))
        (tmp / "index.html").write_text(page, encoding="utf-8")
    files = [f for f in out_dir.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    log.info("explorer: %s (%d files, %.1f MiB)", out_dir / "index.html", len(files), size / 2**20)
    return {"index": out_dir / "index.html", "bytes": size, "files": len(files),
            "miou": {s: d["miou"] for s, d in data["splits"].items()}}
