"""Stage logic for ``c2am``: C^2AM class-agnostic maps, and the CAM baseline.

Outputs ``{split}.h5`` with ``c2am`` [V, T, S, S] (foreground probability in [0, 1]; with
``c2am.refine.iters`` > 0, PAMR-refined on the frame: :func:`refine_c2am`) and, where the dataset
has categories, ``cam`` [V, T, S, S] (max-normalised CAM in [0, 1]).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avs_core.config import C2AMParams, C2AMRefineParams, PathsParams, recorded
from avs_core.data.records import SPLITS
from avs_core.engine.distributed import SINGLE, DistInfo, gather_keep_local
from avs_core.engine.loop import LoopSpec, local_loss, train
from avs_core.losses.c2am import c2am_loss
from avs_core.models.backbones import resnet_stages
from avs_core.models.encoders import normalize_images
from avs_core.models.heads import C2AMNet, border_mean, build_backbone, c2am_pool
from avs_core.learning import Check, loss_check, score_check
from avs_core.maps import minmax
from avs_core.refine.pamr import refine_frames
from avs_core.data.maps import map_chunks, map_file, train_frames
from avs_core.engine.frames import fit, flip_where, learning_check, predict_maps
from avs_core.store import open_h5

log = logging.getLogger(__name__)


# a frozen backbone's features of the train frames and of their mirror images are computed once
# when both fit in this much memory (480 frames at 128 px, stages 1-2 of a ResNet-18: 0.18 GiB; about
# 5,400 frames fit); beyond it every batch runs the backbone again, as a trained one must
FEATURE_CACHE_BYTES = 2 << 30


class FrozenFeatures:
    """``fit``'s ``inputs`` for a frozen backbone: ``(idx [b], flips [b] bool) -> [b, C, h, w]``, the
    features (``C2AMNet.features``, float32) of ``frames[idx]`` normalised, mirrored where ``flips``
    is set. Cached for every frame and both mirrors when that takes at most ``cache_bytes``, so that
    ten epochs cost two passes of the backbone; computed per batch otherwise (the same values to
    float rounding: the backbone is in eval mode, each frame's features do not depend on its batch)."""

    def __init__(self, model: C2AMNet, frames: np.ndarray, dist: DistInfo, cache_bytes: int = FEATURE_CACHE_BYTES):
        if not model.frozen:
            raise ValueError("FrozenFeatures needs a frozen backbone (c2am.freeze_backbone: true)")
        self.model, self.frames, self.dist = model, frames, dist
        self.cache = None
        shape = (2, len(frames), *model.location_mean.shape[1:])
        if 4 * np.prod(shape) <= cache_bytes:
            self.cache = torch.empty(shape, device=dist.device)  # [2 (mirrored), N, C, h, w]
            for mirror in (False, True):
                for i in range(0, len(frames), 64):
                    idx = np.arange(i, min(i + 64, len(frames)))
                    self.cache[int(mirror), idx] = self._compute(idx, torch.full((len(idx),), mirror))

    @torch.no_grad()
    def _compute(self, idx: np.ndarray, flips: torch.Tensor) -> torch.Tensor:
        images = flip_where(normalize_images(torch.from_numpy(self.frames[idx])), flips)
        return self.model.features(self.dist.inputs(images)).float()

    def __call__(self, idx: np.ndarray, flips: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            return self._compute(idx, flips)
        return self.cache[flips.long().to(self.cache.device), torch.from_numpy(idx).to(self.cache.device)]


def train_c2am(p: C2AMParams, seed: int, paths: PathsParams, dist: DistInfo = SINGLE) -> tuple[C2AMNet, bool, dict]:
    """Train on the train split's frames; returns the net, whether its map covers the background,
    and the loss curve.

    The CCAM losses compare every pair of the batch, so under torchrun the pooled features are
    gathered from all processes and each computes the global loss (``fit(coupled=True)``)."""
    net, name = build_backbone(p.train.init, paths["align_model"])
    frames = train_frames(paths["prepared"])
    model = C2AMNet(net, name, frames.shape[-1] * p.input_scale // 8, p.feature_stages, p.freeze_backbone,
                    p.centre_features, p.input_scale)

    model.to(dist.device)
    inputs = FrozenFeatures(model, frames, dist) if p.freeze_backbone else None

    def loss_fn(m, x, _):
        prob, feats = m(x, from_features=inputs is not None)
        fg, bg = c2am_pool(prob.float(), feats.float())
        return c2am_loss(gather_keep_local(fg), gather_keep_local(bg), p.alpha)

    history = fit(model, frames, None, loss_fn, p.train, seed, "c2am", paths["checkpoints"], dist, coupled=True,
                  inputs=inputs)
    model.eval()
    with torch.no_grad():
        sample = normalize_images(torch.from_numpy(frames[:: max(1, len(frames) // 64)][:64]))
        edge = border_mean(model(dist.inputs(sample))[0].float().cpu())
    flipped = edge > 0.5
    log.info("c2am border mean %.3f: the map covers the %s", edge, "background (flipped)" if flipped else "foreground")
    return model, flipped, history


def train_cam(p: C2AMParams, seed: int, labels: np.ndarray, num_classes: int, paths: PathsParams,
              dist: DistInfo = SINGLE):
    """CAM baseline: a linear classifier on frozen ``align`` layer-4 features, trained with the video
    category (the instance-level weak label), on the main process only (it is a seconds-long
    linear probe). Returns ``(backbone, classifier, learning check)``."""
    dist = dataclasses.replace(dist, rank=0, world=1)  # this process alone, on its device
    net, _ = build_backbone(p.train.init, paths["align_model"])
    net.eval().requires_grad_(False).to(dist.device)
    frames = train_frames(paths["prepared"])
    targets = np.repeat(labels, len(frames) // len(labels)).astype(np.int64)
    with torch.no_grad():
        feats = torch.cat([resnet_stages(net, dist.inputs(normalize_images(torch.from_numpy(frames[i:i + 64]))))[-1]
                           for i in range(0, len(frames), 64)])  # [N, C, h, w]
    clf = nn.Conv2d(feats.shape[1], num_classes, 1, bias=False)
    batch = min(64, len(feats))
    per_epoch = len(feats) // batch
    spec = LoopSpec("cam", "c2am.cam_lr", per_epoch * p.cam_epochs, per_epoch)
    y = torch.from_numpy(targets).to(dist.device)

    @functools.lru_cache(maxsize=1)
    def epoch_order(epoch: int) -> torch.Tensor:
        return torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed * 1000 + epoch))

    def batch_at(i: int) -> torch.Tensor:
        idx = epoch_order(i // per_epoch)[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]
        return idx[dist.local(np.arange(batch), "c2am CAM batch (64)")].to(dist.device)

    def step(m, idx):
        return local_loss(F.cross_entropy(m(feats[idx]).mean(dim=(2, 3)), y[idx]))  # GAP then linear

    train(clf, torch.optim.Adam(clf.parameters(), lr=p.cam_lr), spec, batch_at, step, dist)
    with torch.no_grad():
        acc = float((clf(feats).mean(dim=(2, 3)).argmax(1) == y).float().mean())
    log.info("CAM classifier: train accuracy %.3f", acc)
    return net, clf, score_check("CAM classifier: train accuracy", acc, 1 / num_classes)


def cam_maps(net, clf, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``relu(W_c . f)`` of class c (the label when given, else the predicted class), max-normalised -> ``[N, 1, h, w]``."""
    scores = clf(resnet_stages(net, images)[-1])  # [N, K, h, w]
    cls = scores.mean(dim=(2, 3)).argmax(1) if labels is None else labels
    cam = F.relu(scores[torch.arange(len(cls)), cls])[:, None]
    return cam / (cam.amax(dim=(2, 3), keepdim=True) + 1e-5)


# the c2am check: at most this share of the maps' variance may be common to every frame (a split by
# position: 0.94 on `shapes` before c2am.freeze_backbone / centre_features, 0.01 after; session 21)
POSITIONAL_SHARE = 0.5


def positional_share(path: Path, key: str = "c2am") -> float:
    """The share of the maps' variance that every frame has in common: the variance (over pixels) of
    the mean map over the variance of every pixel of every frame. 1: each frame gets the same map
    (it splits the frame by position, whatever it shows); 0: the mean map is flat. Streams ``path``."""
    frames, sq, per_pixel = 0, 0.0, None
    for _, maps in map_chunks(path, key):
        m = maps.reshape(-1, *maps.shape[-2:]).astype(np.float64)  # [n*T, S, S]
        per_pixel = m.sum(0) if per_pixel is None else per_pixel + m.sum(0)
        frames, sq = frames + len(m), sq + float((m ** 2).sum())
    mean_map = per_pixel / frames  # [S, S]
    mu = mean_map.mean()
    total = sq / (frames * mean_map.size) - mu ** 2
    return float(((mean_map - mu) ** 2).mean() / max(total, 1e-12))


def refine_c2am(frames: np.ndarray, maps: np.ndarray, p: C2AMRefineParams) -> np.ndarray:
    """``[n, T, 3, S, S]`` uint8 frames and their ``[n, T, S, S]`` C^2AM maps -> the maps refined by
    PAMR on the frames (min-max per frame, ``** p.power``), ``[n, T, S, S]`` float32 in [0, 1].

    Why: the head's map is at stride 8 and spills over the objects' edges, so at 0.5 it covered
    twice the objects' area (objectness 0.34 on `shapes` S4); refined, 0.62 (docs/BENCHMARKS.md,
    session 35)."""
    n, t = maps.shape[:2]
    norm = minmax(torch.from_numpy(maps.reshape(n * t, *maps.shape[2:]))) ** p.power  # [n*T, S, S]
    out = refine_frames(frames.reshape(n * t, *frames.shape[2:]), norm.numpy(), p.size, p.iters)
    return out.reshape(maps.shape).astype(np.float32)


def run(p: C2AMParams, image_size: int, seed: int, paths: PathsParams, out_dir: Path | None,
        dist: DistInfo = SINGLE) -> tuple[list[Check], dict]:
    """Train (on every process under torchrun), then write the maps to ``out_dir`` (main process only).

    Returns the learning checks and the loss curve (main process; empty elsewhere)."""
    model, flipped, history = train_c2am(p, seed, paths, dist)
    if not dist.is_main:
        return [], {}
    checks = [learning_check("c2am", history)]
    with open_h5(paths["prepared"] / "train.h5") as f:
        labels, names = f["labels"][()], list(f.attrs["category_names"])
    has_labels = bool((labels >= 0).all()) and len(names) > 1
    cam = None
    if has_labels:
        *cam, cam_check = train_cam(p, seed, labels, len(names), paths, dist)
        checks.append(cam_check)

    def c2am_fn(images, _videos):
        prob = model(images)[0]
        return 1 - prob if flipped else prob

    for split in SPLITS:
        with map_file(out_dir / f"{split}.h5", "c2am", split, recorded(p), paths["prepared"]) as out:
            out.fh.attrs["flipped"] = flipped
            with open_h5(paths["prepared"] / f"{split}.h5") as f:
                for start, maps in predict_maps(c2am_fn, paths["prepared"], split, image_size, dist):
                    if p.refine.iters:
                        maps = refine_c2am(f["frames"][start:start + len(maps)], maps, p.refine)
                    out.add("c2am", start, maps)
            if cam is None:
                continue
            # the weak label is used where it is training data; val / test take the predicted class
            with open_h5(paths["prepared"] / f"{split}.h5") as f:
                split_labels = torch.from_numpy(f["labels"][()].astype(np.int64))

            def cam_fn(images, videos):
                t = len(images) // len(split_labels[videos])
                lab = split_labels[videos].repeat_interleave(t).to(dist.device) if split == "train" else None
                return cam_maps(cam[0], cam[1], images, lab)

            for start, maps in predict_maps(cam_fn, paths["prepared"], split, image_size, dist):
                out.add("cam", start, maps)
    checks.append(loss_check("c2am: share of the train maps' variance common to every frame (1: split by position)",
                             positional_share(out_dir / "train.h5"), 1.0, POSITIONAL_SHARE))
    return checks, {"c2am": history}
