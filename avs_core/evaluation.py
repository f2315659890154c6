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
import torch

from avs_core import metrics
from avs_core.data.splits import PREPARED_DIR, load_masks
from avs_core.maps import prob_to_logits, resize_maps, score_maps, to_probability
from avs_core.store import StoreError, open_h5, read_strings, require_finite


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


def _load(method: Method, split: str, ids: list[str]) -> np.ndarray | None:
    path = Path(method.path.format(split=split))
    if not path.is_file():
        return None
    with open_h5(path) as f:
        if method.key not in f:
            return None
        if read_strings(f["ids"]) != ids:
            raise StoreError(f"{path} lists other videos than the prepared {split} split; re-run `dvc repro`")
        maps = f[method.key][()]
    require_finite(maps, ids, f"'{method.key}' of {path}", "delete it and re-run the stage that writes it (`dvc repro -f`)")
    return maps


def evaluate(split: str, batch_frames: int, headline: str) -> dict:
    """Score every available method on the annotated frames of ``split``; details for the headline."""
    masks, annotated = load_masks(split)
    with open_h5(PREPARED_DIR / f"{split}.h5") as f:
        ids, labels = read_strings(f["ids"]), f["labels"][()]
        names = [str(n) for n in f.attrs["category_names"]]
    gt = masks[annotated].astype(np.float32)
    table, details = {}, {}
    for m in METHODS:
        maps = _load(m, split, ids)
        if maps is None:
            continue
        table[m.name] = {**score_maps(maps[annotated], gt, m.rule, batch_frames), "rule": m.rule,
                         "description": m.description}
        if m.name != headline:
            continue
        prob = to_probability(resize_maps(torch.from_numpy(maps[annotated]).float(), gt.shape[-2:]), m.rule)
        logits = prob_to_logits(prob)
        gt_t = torch.from_numpy(gt)
        curves, counted = metrics.f_curves(logits, gt_t)
        details["f_curve"] = curves[counted].mean(0).tolist() if counted.any() else []
        frame_idx = np.nonzero(annotated)[1]
        video_idx = np.nonzero(annotated)[0]
        iou = metrics.frame_iou(logits, gt_t).numpy()
        details["per_frame_index"] = {int(k) + 1: {"miou": float(iou[frame_idx == k].mean())} for k in np.unique(frame_idx)}
        per_cat = {}
        for c in np.unique(labels[video_idx]):
            sel = torch.from_numpy(labels[video_idx] == c)
            per_cat[names[c] if c >= 0 else "all"] = {"miou": float(iou[sel.numpy()].mean()),
                                                      "fscore": metrics.fscore(logits[sel], gt_t[sel], None)}
        details["per_category"] = per_cat
        details["video_iou"] = {ids[v]: float(iou[video_idx == v].mean()) for v in np.unique(video_idx)}
    return {"table": table, "details": details}


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
