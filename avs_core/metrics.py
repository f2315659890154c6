"""AVSBench metrics with the official semantics (``OpenNLPLab/AVSBench``, see the reference notes §2).

Binary (S4 / MS3):

* :func:`frame_iou` is ``mask_iou`` applied to one frame at a time: ``sigmoid(logit) > 0.5``;
  a frame with empty ground truth scores the fraction of pixels predicted 0.
* :func:`miou` is the mean of the per-frame IoUs. The official test loop averages per-batch means;
  with full batches (S4: 740 videos / 4, MS3: 64 / 4) that is the same number.
* :func:`fscore` with ``batch_frames=20`` is the official protocol: for each batch of 20 frames
  (4 videos) the 255-threshold F curves (beta^2 = 0.3) of the non-empty frames are averaged, the
  max over thresholds is taken, and the batch values are averaged; a batch with no non-empty
  frame counts as 0. ``batch_frames=None`` is the batch-independent variant (one mean curve over
  all non-empty frames, then one max).

Semantic (AVSS): :func:`avss_scores` follows ``calc_color_miou_fscore``: per-class IoU / F summed
over the frames where the class occurs in prediction or ground truth, divided by that count, then
averaged over all 71 classes with background (0) included.

Inputs are logits, as torch tensors or numpy arrays; all arithmetic is float32 as in the
reference, so results match it to ~1e-6.
"""
from __future__ import annotations

import numpy as np
import torch

BETA2 = 0.3
NUM_THRESHOLDS = 255
_IOU_EPS = 1e-7
_F_EPS = 1e-20


def _as_tensor(x, dtype=torch.float32) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    return t.detach().to("cpu", dtype)


def _frames(logits, gt) -> tuple[torch.Tensor, torch.Tensor]:
    pred = _as_tensor(logits)
    target = _as_tensor(gt)
    if pred.ndim == 4 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if pred.ndim != 3 or pred.shape != target.shape:
        raise ValueError(f"logits {tuple(pred.shape)} and gt {tuple(target.shape)} must both be [N, H, W]")
    return pred, target


def frame_iou(logits, gt) -> torch.Tensor:
    """Per-frame IoU.

    Args:
        logits: ``[N, H, W]`` (or ``[N, 1, H, W]``) float logits.
        gt: same shape, values in {0, 1}.

    Returns:
        ``[N]`` float32 tensor in [0, 1].
    """
    pred, target = _frames(logits, gt)
    n_pixels = pred.shape[-1] * pred.shape[-2]
    no_obj = target.sum(dim=(1, 2)) == 0
    binary = (torch.sigmoid(pred) > 0.5).int()
    inter = (binary * target).sum(2).sum(1)
    union = torch.max(binary, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - binary)).sum(2).sum(1)
    inter[no_obj] = inter_no_obj[no_obj]
    union[no_obj] = n_pixels
    return inter / (union + _IOU_EPS)


def miou(logits, gt) -> float:
    """Mean per-frame IoU (the number AVSBench papers report as mIoU)."""
    return float(frame_iou(logits, gt).mean())


def f_curve(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """F-measure at the 255 official thresholds for one frame.

    Args:
        prob: ``[H, W]`` float32 probabilities (sigmoid of the logits).
        target: ``[H, W]`` float32 in {0, 1}.

    Returns:
        ``[255]`` float32; NaN (0/0) entries are 0.
    """
    return _frame_curves(prob[None], target[None])[0]


def _frame_curves(prob: torch.Tensor, target: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """``[N, 255]`` F curves of ``prob`` / ``target`` ``[N, H, W]``, ``chunk`` frames at a time.

    The counts of ``p >= t`` at each threshold are exactly the reference's per-threshold
    comparisons, from one histogram per frame: ``bucketize(..., right=True)`` gives each pixel the
    number of thresholds ``<= p``, so ``p >= t_i`` iff that number exceeds ``i``. O(HW) per frame
    instead of 255 passes (or a sort).
    """
    thresholds = torch.linspace(0, 1 - 1e-10, NUM_THRESHOLDS)
    out = []
    for s in range(0, len(prob), chunk):
        p, t = prob[s:s + chunk].flatten(1), target[s:s + chunk].flatten(1)  # [n, HW]
        n, hw = p.shape
        bins = torch.bucketize(p, thresholds, right=True) + (NUM_THRESHOLDS + 1) * torch.arange(n)[:, None]  # [n, HW]
        size = n * (NUM_THRESHOLDS + 1)
        hist = torch.bincount(bins.flatten(), minlength=size).view(n, -1)  # [n, 256]
        hist_pos = torch.bincount(bins[t > 0], minlength=size).view(n, -1)
        n_pred = (hw - hist.cumsum(1)[:, :NUM_THRESHOLDS]).to(torch.float32)  # [n, 255]: pixels with p >= t_i
        tp = (hist_pos.sum(1, keepdim=True) - hist_pos.cumsum(1)[:, :NUM_THRESHOLDS]).to(torch.float32)
        prec = tp / (n_pred + _F_EPS)
        recall = tp / (t.sum(1, keepdim=True) + _F_EPS)
        f = (1 + BETA2) * prec * recall / (BETA2 * prec + recall)
        f[f != f] = 0
        out.append(f)
    return torch.cat(out) if out else torch.zeros(0, NUM_THRESHOLDS)


def _mean_curve(curves: torch.Tensor, counted: torch.Tensor) -> torch.Tensor | None:
    """Mean of the ``counted`` frames' curves, summed in frame order as the reference does; None if none count."""
    total, count = torch.zeros(NUM_THRESHOLDS), 0
    for curve in curves[counted]:
        total += curve
        count += 1
    return total / count if count else None


def f_curves(logits, gt) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame F curves and a mask of the frames that count (non-empty ground truth).

    Returns:
        ``([N, 255] float32, [N] bool)``.
    """
    pred, target = _frames(logits, gt)
    return _frame_curves(torch.sigmoid(pred), target), target.mean(dim=(1, 2)) != 0


def batch_fscores(curves: torch.Tensor, counted: torch.Tensor, batch_frames: int = 20) -> list[float]:
    """The official per-batch F-scores from :func:`f_curves`: for each run of ``batch_frames``
    frames, the max of the mean curve of its counted frames (0 when none counts)."""
    if batch_frames < 1:
        raise ValueError("batch_frames must be >= 1 or None")
    scores = []
    for start in range(0, len(curves), batch_frames):
        curve = _mean_curve(curves[start:start + batch_frames], counted[start:start + batch_frames])
        scores.append(0.0 if curve is None else float(curve.max()))
    return scores


def fscore(logits, gt, batch_frames: int | None = 20) -> float:
    """AVSBench F-score (beta^2 = 0.3).

    Args:
        logits: ``[N, H, W]`` logits, frames in video order (5 per video).
        gt: ``[N, H, W]`` in {0, 1}.
        batch_frames: frames per evaluation batch (20 = the official ``--test_batch_size 4``);
            ``None`` pools all frames (batch-independent variant).
    """
    if batch_frames is not None and batch_frames < 1:
        raise ValueError("batch_frames must be >= 1 or None")
    curves, counted = f_curves(logits, gt)
    if batch_frames is None:
        curve = _mean_curve(curves, counted)
        return 0.0 if curve is None else float(curve.max())
    scores = batch_fscores(curves, counted, batch_frames)
    return float(np.mean(scores)) if scores else 0.0


def avss_scores(logits, target, num_classes: int = 71):
    """AVSS per-class mIoU and F-score, official aggregation.

    Args:
        logits: ``[N, C, H, W]`` class logits (C = 71 with background at index 0).
        target: ``[N, H, W]`` integer labels in [0, C).

    Returns:
        ``(miou, fscore, per_class_miou [C], per_class_f [C])``; floats and float32 tensors.
    """
    scores = _as_tensor(logits)
    labels = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
    labels = labels.to("cpu", torch.int64)
    if scores.ndim != 4 or scores.shape[1] != num_classes or labels.shape != (scores.shape[0], *scores.shape[2:]):
        raise ValueError(f"logits {tuple(scores.shape)} must be [N, {num_classes}, H, W] and target "
                         f"{tuple(labels.shape)} [N, H, W]")
    predict = scores.argmax(1)  # softmax does not change the argmax
    iou_sum = torch.zeros(num_classes)
    f_sum = torch.zeros(num_classes)
    count = torch.zeros(num_classes)
    for p, t in zip(predict, labels):
        area_pred = torch.bincount(p.flatten(), minlength=num_classes).float()
        area_lab = torch.bincount(t.flatten(), minlength=num_classes).float()
        area_inter = torch.bincount(p[p == t], minlength=num_classes).float()
        area_union = area_pred + area_lab - area_inter
        iou_sum += 1.0 * area_inter / (2.220446049250313e-16 + area_union)
        count[area_union.nonzero().squeeze(-1)] += 1
        precision = area_inter / area_pred
        recall = area_inter / area_lab
        f = (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
        f[torch.isnan(f)] = 0.0
        f_sum += f
    per_class_iou = iou_sum / count
    per_class_iou[torch.isnan(per_class_iou)] = 0
    per_class_f = f_sum / count
    per_class_f[torch.isnan(per_class_f)] = 0
    return float(per_class_iou.mean()), float(per_class_f.mean()), per_class_iou, per_class_f
