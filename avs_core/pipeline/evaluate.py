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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avs_core.data.splits import PREPARED_DIR
from avs_core.quality import score_stored_maps
from avs_core.store import open_h5, read_strings


@dataclass(frozen=True)
class Method:
    name: str
    path: str  # pattern with {split}
    key: str
    rule: str
    description: str


METHODS = (
    Method("coarse_av", "data/align/{split}.h5", "fused", "minmax", "EZ-VSL-style coarse AV map (M2ICL / MMICL encoders)"),
    Method("coarse_av_median", "data/align/{split}.h5", "fused", "median", "same map, EZ-VSL VGG-SS median threshold"),
    Method("shuffled_audio", "data/align/{split}.h5", "fused_shuffled", "minmax", "coarse map with another video's audio (visual-only baseline)"),
    Method("cam", "data/pseudo/c2am/{split}.h5", "cam", "prob", "CAM of a linear classifier on instance labels"),
    Method("c2am", "data/pseudo/c2am/{split}.h5", "c2am", "prob", "C2AM class-agnostic map"),
    Method("saliency", "data/pseudo/saliency/{split}.h5", "saliency", "prob", "salient-object net trained on C2AM cues"),
    Method("wsavs_eq6", "data/pseudo/saliency/{split}.h5", "eq6", "prob", "WS-AVS Eq. 6 pseudo mask (argmax [1-S; A])"),
    Method("pamr", "data/pseudo/pamr/{split}.h5", "pamr", "prob", "PAMR on the fused coarse map"),
    Method("random_walk", "data/pseudo/affinity/{split}.h5", "walk", "prob", "affinity random walk (USPL SMR)"),
    Method("crf", "data/pseudo/crf/{split}.h5", "mask", "prob", "dense CRF pseudo mask"),
    Method("avs_ws", "data/seg/none/{split}.h5", "prob", "prob", "AVS(ws): same network, no mask (instance labels + L_avf)"),
    Method("seg_pseudo", "data/seg/pseudo/{split}.h5", "prob", "prob", "segmentation trained on pseudo masks (headline)"),
    Method("upper_bound_full", "data/seg/full/{split}.h5", "prob", "prob", "same network, ground-truth masks (upper bound)"),
)
PSEUDO_STAGES = ("c2am", "saliency", "pamr", "affinity", "crf")


def evaluate(split: str, batch_frames: int, headline: str) -> dict:
    """Score every available method on the annotated frames of ``split``; details for the headline.

    Each method's maps are read and scored in blocks (:func:`~avs_core.quality.score_stored_maps`),
    so memory stays flat in the split size; the headline keeps its per-frame IoUs and F curves,
    from which the per-category, per-frame-index and per-video figures follow.
    """
    with open_h5(PREPARED_DIR / f"{split}.h5") as f:
        ids, labels, annotated = read_strings(f["ids"]), f["labels"][()], f["annotated"][()]
        names = [str(n) for n in f.attrs["category_names"]]
    table, details = {}, {}
    for m in METHODS:
        path = Path(m.path.format(split=split))
        if not path.is_file():
            continue
        with open_h5(path) as f:
            if m.key not in f:
                continue
        scores = score_stored_maps(path, m.key, split, m.rule, batch_frames=batch_frames,
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


def pseudo_mask_quality(reports: Path = Path("reports")) -> dict:
    """The quality reports of the pseudo-mask stages (annotated training frames)."""
    out = {}
    for stage in PSEUDO_STAGES:
        path = reports / stage / "quality.json"
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
