"""Stage logic for ``evaluate``: every method the pipeline produces, scored on the same test frames.

How each map becomes a mask (the ``rule`` column; see ``avs_core.maps``):

* ``minmax``: per-frame min-max normalisation, foreground where > 0.5 (EZ-VSL ``normalize_img``);
  the F-score sweeps the 255 official thresholds over the normalised map.
* ``median``: the EZ-VSL / LVS VGG-SS rule, top 50% of the pixels.
* ``prob``: the map is a foreground probability (C^2AM sigmoid, max-normalised CAM, saliency,
  PAMR / random-walk maps, binary Eq. 6 and CRF masks, sigmoid of the segmentation logits);
  foreground where > 0.5.

Every map is resized bilinearly to the ground truth's native size (224 x 224 on AVSBench) before
scoring. mIoU is the per-frame mean; F-score is the official batched protocol (``eval.batch_frames``
= 20 frames = 4 videos) and the pooled variant.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avs_core.config import PathsParams
from avs_core.quality import score_stored_maps
from avs_core.scored import OUTPUTS, PSEUDO_STAGES
from avs_core.store import open_h5, read_strings


def evaluate(split: str, batch_frames: int, headline: str, paths: PathsParams) -> dict:
    """Score every available method on the annotated frames of ``split``; details for the headline.

    Each method's maps are read and scored in blocks (:func:`~avs_core.quality.score_stored_maps`),
    so memory stays flat in the split size; the headline keeps its per-frame IoUs and F curves,
    from which the per-category, per-frame-index and per-video figures follow.
    """
    with open_h5(paths["prepared"] / f"{split}.h5") as f:
        ids, labels, annotated = read_strings(f["ids"]), f["labels"][()], f["annotated"][()]
        names = [str(n) for n in f.attrs["category_names"]]
    table, details = {}, {}
    for m in (s for s in OUTPUTS if s.table):
        path = m.file(paths, split)
        if not path.is_file():
            continue
        with open_h5(path) as f:
            if m.key not in f:
                continue
        scores = score_stored_maps(path, m.key, split, m.rule, paths["prepared"], batch_frames=batch_frames,
                                   keep_frames=m.name == headline)
        table[m.name] = {k: scores[k] for k in ("miou", "fscore", "fscore_pooled", "frames")}
        table[m.name].update(rule=m.rule, description=m.description)
        if m.name == headline:
            details = _headline_details(scores, annotated, labels, names, ids)
    return {"table": table, "details": details}


def _pooled_f(curves: np.ndarray, counted: np.ndarray) -> float:
    """``metrics.fscore(..., batch_frames=None)`` of a subset from its per-frame curves."""
    return float(curves[counted].astype(np.float64).mean(0).max()) if counted.any() else 0.0


def _headline_details(scores: dict, annotated: np.ndarray, labels: np.ndarray, names: list[str],
                      ids: list[str]) -> dict:
    iou, curves, counted = scores["frame_iou"], scores["f_curves"], scores["counted"]
    video_idx, frame_idx = np.nonzero(annotated)  # the scored frames, in video order
    per_cat = {}
    for c in np.unique(labels[video_idx]):
        sel = labels[video_idx] == c
        per_cat[names[c] if c >= 0 else "all"] = {"miou": float(iou[sel].mean()),
                                                  "fscore": _pooled_f(curves[sel], counted[sel])}
    return {
        "f_curve": curves[counted].astype(np.float64).mean(0).tolist() if counted.any() else [],
        "per_frame_index": {int(k) + 1: {"miou": float(iou[frame_idx == k].mean())} for k in np.unique(frame_idx)},
        "per_category": per_cat,
        "video_iou": {ids[v]: float(iou[video_idx == v].mean()) for v in np.unique(video_idx)},
    }


def pseudo_mask_quality(reports: Path) -> dict:
    """The quality reports of the pseudo-mask stages (annotated training frames) in ``reports``."""
    out = {}
    for stage in PSEUDO_STAGES:
        path = Path(reports) / stage / "quality.json"
        if path.is_file():
            for name, s in json.loads(path.read_text()).items():
                out[name] = {"miou": s["miou"], "fscore": s["fscore"]}
    return out


def markdown_table(table: dict, headline: str) -> str:
    lines = ["| method | mIoU | F-score (official, batched) | F-score (pooled) | mask rule | what |",
             "|---|---|---|---|---|---|"]
    for name, s in table.items():
        mark = " **(headline)**" if name == headline else ""
        lines.append(f"| {name}{mark} | {s['miou']:.4f} | {s['fscore']:.4f} | {s['fscore_pooled']:.4f} | "
                     f"{s['rule']} | {s['description']} |")
    return "\n".join(lines) + "\n"
