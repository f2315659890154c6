"""Turning soft localisation maps into masks and scoring them with the AVSBench metrics.

Conventions (written next to every table this project produces):

* ``minmax``: each map is min-max normalised to [0, 1] (EZ-VSL ``normalize_img``) and
  thresholded at 0.5; the F-score sweeps its 255 thresholds over the normalised map.
* ``median``: EZ-VSL / LVS VGG-SS evaluation: pixels at or above the map's median are
  foreground (``thr = sort(pred)[H*W*0.5]``), i.e. the top half of the pixels.
* ``prob``: the map already is a probability (segmentation output, pseudo-mask stages), scored
  as is (``> 0.5``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from avs_core import metrics

Rule = Literal["minmax", "median", "prob"]
_LOGIT_CLAMP = 1e-6


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[N, h, w]`` -> ``[N, H, W]`` bilinear (align_corners=False)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of ``[N, H, W]`` to [0, 1] (constant maps become 0)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(maps)


def to_probability(maps: torch.Tensor, rule: Rule) -> torch.Tensor:
    """Soft maps -> probabilities whose ``> 0.5`` is the rule's mask."""
    if rule == "prob":
        return maps.float().clamp(0, 1)
    norm = minmax(maps.float())
    if rule == "minmax":
        return norm
    n = norm[0].numel()
    thr = norm.flatten(1).sort(dim=1).values[:, int(n * 0.5)]
    return (norm >= thr[:, None, None]).float()


def prob_to_logits(prob: torch.Tensor) -> torch.Tensor:
    """Probabilities -> logits for the metric API (sigmoid(logit) > 0.5 iff prob > 0.5)."""
    p = prob.clamp(_LOGIT_CLAMP, 1 - _LOGIT_CLAMP)
    logits = torch.log(p) - torch.log1p(-p)
    return torch.where(prob > 0.5, logits.clamp_min(1e-4), logits.clamp_max(0.0))


def fuse_scales(per_scale: list[torch.Tensor], size: int) -> torch.Tensor:
    """Per-scale maps ``[N, h_s, w_s]`` (any sizes) -> their mean ``[N, size, size]``, each upsampled
    bilinearly first: the coarse map of a set of ResNet stages (``align`` writes it as ``fused``)."""
    return torch.stack([F.interpolate(m[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
                        for m in per_scale]).mean(0)


def to_logits(maps, size: tuple[int, int], rule: Rule) -> torch.Tensor:
    """Soft maps ``[N, h, w]`` (array or tensor) -> metric-API logits ``[N, H, W]`` at ``size``:
    resized bilinearly, made probabilities by ``rule``, then logits (> 0 iff the rule's mask)."""
    maps_t = maps if isinstance(maps, torch.Tensor) else torch.as_tensor(np.asarray(maps))
    return prob_to_logits(to_probability(resize_maps(maps_t.float(), size), rule))


def score_map_blocks(blocks, rule: Rule, batch_frames: int = 20, keep_frames: bool = False) -> dict:
    """mIoU, official F-score and pooled F-score of soft maps against ground truth, over an iterable
    of ``(maps [n, h, w], gt [n, H0, W0] {0, 1})`` blocks, in bounded memory (maps are resized to the
    ground truth: metrics at native resolution).

    Every block but the last must hold a multiple of ``batch_frames`` frames, so the official
    F-score batches are the same as in one pass; the numbers equal one pass of :mod:`avs_core.metrics`
    up to float summation order.

    With ``keep_frames`` the result also holds ``frame_iou`` [N] float32, ``f_curves`` [N, 255]
    float32 and ``counted`` [N] bool (non-empty ground truth): small per-frame arrays from which
    any subset's mIoU and pooled F-score follow without the maps.
    """
    iou_sum, frames, batch_scores = 0.0, 0, []
    curve_sum, counted = torch.zeros(metrics.NUM_THRESHOLDS, dtype=torch.float64), 0
    kept: dict[str, list] = {"frame_iou": [], "f_curves": [], "counted": []}
    for maps, gt in blocks:
        gt_t = torch.as_tensor(np.asarray(gt)).float()
        logits = to_logits(maps, tuple(gt_t.shape[-2:]), rule)
        iou = metrics.frame_iou(logits, gt_t)
        iou_sum += float(iou.double().sum())
        frames += len(gt_t)
        curves, nonempty = metrics.f_curves(logits, gt_t)
        batch_scores += metrics.batch_fscores(curves, nonempty, batch_frames)
        curve_sum += curves[nonempty].double().sum(0)
        counted += int(nonempty.sum())
        if keep_frames:
            for key, value in (("frame_iou", iou), ("f_curves", curves), ("counted", nonempty)):
                kept[key].append(value.numpy())
    if frames == 0:
        return {"miou": float("nan"), "fscore": float("nan"), "fscore_pooled": float("nan"), "frames": 0}
    out = {"miou": iou_sum / frames, "fscore": float(np.mean(batch_scores)),
           "fscore_pooled": float((curve_sum / counted).max()) if counted else 0.0, "frames": frames}
    if keep_frames:
        out.update({key: np.concatenate(value) for key, value in kept.items()})
    return out
