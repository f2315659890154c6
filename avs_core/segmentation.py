"""Stage logic for ``train_seg``: the segmentation network trained on pseudo masks (and baselines).

Losses per supervision mode (targets come from ``avs_core.supervision``):

* ``pseudo``: BCE against the CRF pseudo masks on every frame + ``lambda_avf`` x L_avf (WS-AVS Eq. 8).
* ``full``: BCE against ground truth where annotated (S4: frame 1) + ``lambda_avf`` x L_avf.
* ``none``: AVS(ws): no mask. The predicted mask pools the visual features, a linear classifier on
  the pooled vector must predict the video's category (cross-entropy), + ``lambda_avf`` x L_avf;
  without categories (MS3) only L_avf remains.

L_avf is the M^2ICL loss on the middle frame of each video of the batch (one frame per video, so
the negatives are other videos). Flips are applied to frames and masks together.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avs_core.config import SegParams, require_batch_fits
from avs_core.data.splits import SplitArrays
from avs_core.engine.checkpoint import load
from avs_core.engine.distributed import SINGLE, DistInfo, gather_keep_local
from avs_core.losses.contrastive import m2icl_loss
from avs_core.models.encoders import normalize_images
from avs_core.models.segmentation import AVSegmenter
from avs_core.runtime import progress, require_finite_loss
from avs_core.supervision import Targets

log = logging.getLogger(__name__)


def build_model(p: SegParams, backbone: str, dim: int, frames: int, align_checkpoint) -> AVSegmenter:
    model = AVSegmenter(backbone, dim, p.width, frames, p.fusion)
    if p.init_from_alignment:
        ckpt = load(align_checkpoint)
        model.visual.load_state_dict(ckpt["visual"])
        model.audio.load_state_dict(ckpt["audio"])
    return model


def _batch(split: SplitArrays, vids: np.ndarray, flip: torch.Tensor | None):
    frames = torch.from_numpy(split.frames[vids])  # [B, T, 3, S, S]
    if flip is not None:
        frames = torch.where(flip.view(-1, 1, 1, 1, 1), frames.flip(-1), frames)
    images = normalize_images(frames.flatten(0, 1))
    spec = torch.from_numpy(split.audio[vids]).flatten(0, 1)
    return images, spec


class WeakClassifier(nn.Module):
    """AVS(ws): mask-pooled last-stage features -> category logits."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, classes)

    def forward(self, logits: torch.Tensor, visual_last: torch.Tensor) -> torch.Tensor:
        weight = F.adaptive_avg_pool2d(torch.sigmoid(logits), visual_last.shape[-2:])  # [N, 1, h, w]
        pooled = (weight * visual_last).sum(dim=(2, 3)) / (weight.sum(dim=(2, 3)) + 1e-6)
        return self.fc(pooled)


@torch.no_grad()
def predict(model: AVSegmenter, split: SplitArrays, batch_videos: int = 4, dist: DistInfo = SINGLE):
    """Yield ``(start, prob [n, T, S, S] float32)`` over a split (computed on ``dist.device``)."""
    model.eval()
    for start in range(0, len(split), batch_videos):
        vids = np.arange(start, min(start + batch_videos, len(split)))
        images, spec = _batch(split, vids, None)
        with dist.autocast():
            logits = model(dist.inputs(images), spec.to(dist.device))["logits"]
        prob = torch.sigmoid(logits.float())[:, 0].cpu()
        yield start, prob.view(len(vids), -1, *prob.shape[-2:]).numpy()


def val_miou(model: AVSegmenter, split: SplitArrays, masks: np.ndarray, dist: DistInfo = SINGLE) -> float:
    """Validation mIoU against the validation split's ground truth (annotated frames)."""
    from avs_core.metrics import miou

    probs = np.concatenate([p for _, p in predict(model, split, dist=dist)])
    logits = torch.logit(torch.from_numpy(probs).clamp(1e-6, 1 - 1e-6))
    logits = F.interpolate(logits.flatten(0, 1)[:, None], size=masks.shape[-2:], mode="bilinear",
                           align_corners=False)[:, 0]
    ann = split.annotated.reshape(-1)
    return miou(logits[ann], torch.from_numpy(masks.reshape(-1, *masks.shape[-2:])[ann]).float())


def train(model: AVSegmenter, train_split: SplitArrays, targets: Targets, val_split: SplitArrays,
          val_masks: np.ndarray, p: SegParams, on_epoch=None, dist: DistInfo = SINGLE) -> dict:
    """Plain loop; returns the best-on-validation state dict (and its epoch / mIoU).

    Under torchrun each process takes its share of the videos of every batch. The per-frame terms
    are means over that share (DDP averages them); the L_avf term contrasts the whole batch, so it
    is gathered and its backward scaled by the world size (see ``gather_keep_local``).
    """
    require_batch_fits("seg.batch_size", p.batch_size, len(train_split), "videos")
    classes = len(train_split.category_names)
    use_class = targets.mode == "none" and classes > 1 and (train_split.labels >= 0).all()
    clf = WeakClassifier(model.visual.proj[-1].proj.out_features, classes) if use_class else None
    step_model = dist.prepare(model)
    step_clf = dist.prepare(clf) if clf else None
    encoders = {id(q) for m in (model.visual, model.audio) for q in m.parameters()}
    new = [q for q in model.parameters() if id(q) not in encoders] + (list(clf.parameters()) if clf else [])
    opt = torch.optim.Adam([{"params": [q for q in model.parameters() if id(q) in encoders], "lr": p.lr},
                            {"params": new, "lr": p.lr * p.head_lr_mult}], weight_decay=p.weight_decay)
    t = train_split.frames.shape[1]
    size = train_split.frames.shape[-1]
    masks = None
    if targets.masks is not None:
        masks = F.interpolate(torch.from_numpy(targets.masks).float().flatten(0, 1)[:, None], size=(size, size),
                              mode="nearest")[:, 0].view(len(train_split), t, size, size)
    weights = torch.from_numpy(targets.weights)
    labels = torch.from_numpy(train_split.labels.astype(np.int64))
    best = {"miou": -1.0}
    for epoch in range(p.epochs):
        model.train()
        gen = torch.Generator().manual_seed(p.seed * 1000 + epoch)
        order = torch.randperm(len(train_split), generator=gen).numpy()
        batches = [order[i:i + p.batch_size] for i in range(0, len(order) - p.batch_size + 1, p.batch_size)]
        total = 0.0
        for vids in progress(batches, desc=f"train_seg[{targets.mode}] epoch {epoch + 1}/{p.epochs}"):
            vids = np.sort(vids)
            flip = (torch.rand(len(vids), generator=gen) < 0.5) if p.augment else None
            mine = dist.local(np.arange(len(vids)), "seg.batch_size")
            vids, flip = vids[mine], (None if flip is None else flip[mine])
            images, spec = _batch(train_split, vids, flip)
            with dist.autocast():
                out = step_model(dist.inputs(images), spec.to(dist.device))
            logits = out["logits"].float()[:, 0].view(len(vids), t, size, size)
            loss = logits.new_zeros(())
            if masks is not None:
                target = masks[vids]
                if flip is not None:
                    target = torch.where(flip.view(-1, 1, 1, 1), target.flip(-1), target)
                target, w = target.to(dist.device), weights[vids].to(dist.device)
                pos_weight = None
                if p.balanced_bce:  # the uninformed optimum becomes logit 0 instead of the fg prior
                    pos = (target * w[..., None, None]).sum()
                    neg = ((1 - target) * w[..., None, None]).sum()
                    pos_weight = (neg / pos.clamp_min(1.0)).clamp(1.0, 100.0)
                per_frame = F.binary_cross_entropy_with_logits(logits, target, reduction="none",
                                                               pos_weight=pos_weight).mean(dim=(2, 3))
                loss = loss + (per_frame * w).sum() / w.sum().clamp_min(1)
            if clf is not None:
                class_logits = step_clf(out["logits"].float(), out["visual"][-1].float())
                loss = loss + F.cross_entropy(class_logits, labels[vids].repeat_interleave(t).to(dist.device))
            coupled = loss.new_zeros(())
            if p.lambda_avf > 0:
                mid = torch.arange(len(vids)) * t + t // 2  # one frame per video
                a = gather_keep_local(out["audio"][mid].float())
                coupled = p.lambda_avf * m2icl_loss(a, [gather_keep_local(v[mid].float()) for v in out["visual"]], p.tau)
            opt.zero_grad(set_to_none=True)
            (loss + dist.world * coupled).backward()
            opt.step()
            loss = loss + coupled
            total += require_finite_loss(float(loss.detach()), f"train_seg[{targets.mode}] epoch {epoch + 1}", "seg.lr")
        score = val_miou(model, val_split, val_masks, dist)
        metrics = {"loss": total / max(len(batches), 1), "val_miou": score}
        log.info("train_seg[%s] epoch %d: loss %.4f, val mIoU %.4f", targets.mode, epoch + 1, metrics["loss"], score)
        if on_epoch:
            on_epoch(epoch, metrics)
        if score > best["miou"]:
            best = {"miou": score, "epoch": epoch, "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
    model.load_state_dict(best["state"])
    return {"supervision": targets.mode, "best_epoch": best["epoch"], "val_miou": best["miou"], "params": asdict(p)}
