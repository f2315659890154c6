"""What the pseudo-mask stages share: map files, chunked frame reading, a plain frame-level training loop."""
from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import TrainingParams, require_batch_fits
from avs_core.data.splits import PREPARED_DIR
from avs_core.engine.distributed import SINGLE, DistInfo
from avs_core.engine.schedule import warmup_cosine_scheduler
from avs_core.learning import Check, loss_check
from avs_core.models.encoders import normalize_images
from avs_core.runtime import progress, require_finite_loss
from avs_core.store import (
    StoreError,
    create_h5,
    open_h5,
    read_strings,
    require_finite,
    write_strings,
)

log = logging.getLogger(__name__)
CHUNK_VIDEOS = 16


def split_ids(split: str) -> list[str]:
    with open_h5(PREPARED_DIR / f"{split}.h5") as f:
        return read_strings(f["ids"])


def frame_chunks(split: str, chunk: int = CHUNK_VIDEOS) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, frames [n, T, 3, S, S] uint8)`` over the split, ``chunk`` videos at a time (bounded memory)."""
    with open_h5(PREPARED_DIR / f"{split}.h5") as f:
        frames = f["frames"]
        for start in range(0, frames.shape[0], chunk):
            yield start, frames[start:start + chunk]


def train_frames(split: str = "train") -> np.ndarray:
    """All frames of a split flattened to ``[V*T, 3, S, S]`` uint8 (video-major)."""
    with open_h5(PREPARED_DIR / f"{split}.h5") as f:
        frames = f["frames"][()]
    return frames.reshape(-1, *frames.shape[2:])


class MapWriter:
    """Writes ``[V, T, ...]`` datasets chunk by chunk into one map file per split.

    Float maps must be finite: a NaN (a diverged net, a broken upstream map) stops the stage with
    the video ids instead of flowing silently into the pseudo masks and metrics.
    """

    def __init__(self, fh: h5py.File, ids: list[str], where: str):
        self.fh, self.ids, self.where = fh, ids, where
        self.num_videos = len(ids)

    def add(self, name: str, start: int, values: np.ndarray) -> None:
        require_finite(values, self.ids[start:start + len(values)], f"'{name}' of {self.where}",
                       "check the upstream maps with `avs inspect` and the training loss in reports/; "
                       "a lower learning rate usually fixes a diverged net")
        if name not in self.fh:
            shape = (self.num_videos, *values.shape[1:])
            self.fh.create_dataset(name, shape=shape, dtype=values.dtype, chunks=(1, *values.shape[1:]),
                                   compression="lzf" if values.dtype == np.uint8 else None)
        self.fh[name][start:start + len(values)] = values


@contextlib.contextmanager
def map_file(path: Path, stage: str, split: str, params: dict) -> Iterator[MapWriter]:
    ids = split_ids(split)
    with create_h5(path, stage=stage, params=params, split=split) as fh:
        write_strings(fh, "ids", ids)
        yield MapWriter(fh, ids, f"{stage} output {path.name} ({split})")


def read_maps(path: Path, key: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
    with open_h5(path) as f:
        if key not in f:
            raise StoreError(f"{path} has no dataset '{key}' (has {sorted(f)}); re-run the stage that writes it")
        values = f[key][start:stop]
        ids = read_strings(f["ids"])[start:stop]
    require_finite(values, ids, f"'{key}' of {path}", "delete it and re-run the stage that writes it (`dvc repro -f`)")
    return values


def upsample(maps: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, 1, h, w]`` -> ``[N, size, size]`` bilinear."""
    return F.interpolate(maps.float(), size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def augment_pair(images: torch.Tensor, targets: torch.Tensor | None, gen: torch.Generator):
    """Random horizontal flip applied identically to images ``[B, 3, H, W]`` and targets ``[B, ..., h, w]``."""
    flip = torch.rand(images.shape[0], generator=gen) < 0.5
    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    if targets is not None:
        shape = (-1,) + (1,) * (targets.ndim - 1)
        targets = torch.where(flip.view(shape), targets.flip(-1), targets)
    return images, targets


def fit(model: torch.nn.Module, frames: np.ndarray, targets: np.ndarray | None,
        loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor | None], torch.Tensor],
        p: TrainingParams, seed: int, desc: str, dist: DistInfo = SINGLE, coupled: bool = False) -> dict:
    """Plain Adam loop over frames (and aligned per-frame targets), lr warm-up (1 epoch) + cosine.

    Returns the loss curve: ``{"initial": loss of the untrained net on the first batch,
    "epochs": [mean loss per epoch]}`` (what :func:`learning_check` compares).

    Under torchrun every process draws the same global batch and trains on its share. A loss
    that couples the samples of a batch (``coupled``: it gathers with ``gather_keep_local``) is
    the global loss on every process, so its backward is scaled by the world size to undo DDP's
    averaging; a per-sample mean needs no scaling.
    """
    require_batch_fits(f"{desc}.train.batch_size", p.batch_size, len(frames), "frames")
    step_model = dist.prepare(model)
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=p.lr, weight_decay=p.weight_decay)
    steps = len(frames) // p.batch_size
    sched = warmup_cosine_scheduler(opt, steps * p.epochs, steps)
    scale = dist.world if coupled else 1
    history = {"initial": float("nan"), "epochs": []}
    for epoch in range(p.epochs):
        model.train()
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(len(frames), generator=gen).numpy()
        batches = [order[i * p.batch_size:(i + 1) * p.batch_size] for i in range(steps)]
        total = 0.0
        for idx in progress(batches, desc=f"{desc} epoch {epoch + 1}/{p.epochs}"):
            idx = np.sort(idx)
            images = normalize_images(torch.from_numpy(frames[idx]))
            target = None if targets is None else torch.from_numpy(targets[idx])
            images, target = augment_pair(images, target, gen)
            mine = dist.local(np.arange(len(idx)), f"{desc}.train.batch_size")
            target = None if target is None else target[mine].to(dist.device)
            with dist.autocast():
                loss = loss_fn(step_model, dist.inputs(images[mine]), target).float()
            opt.zero_grad(set_to_none=True)
            (loss * scale).backward()
            opt.step()
            sched.step()
            total += require_finite_loss(float(loss.detach()), f"{desc} epoch {epoch + 1}", f"{desc}.train.lr")
            if math.isnan(history["initial"]):  # the first step: the untrained net's loss
                history["initial"] = float(loss.detach())
        history["epochs"].append(total / max(len(batches), 1))
        log.info("%s epoch %d: loss %.4f (untrained: %.4f)", desc, epoch + 1, history["epochs"][-1], history["initial"])
    return history


def learning_check(name: str, history: dict, margin: float = 0.9) -> Check:
    """These losses have no closed-form chance level; the untrained net's loss stands in for it."""
    return loss_check(f"{name}: train loss, last epoch vs untrained", history["epochs"][-1], history["initial"], margin)


@torch.no_grad()
def predict_maps(fn: Callable[[torch.Tensor, slice], torch.Tensor], split: str, size: int,
                 dist: DistInfo = SINGLE) -> Iterator[tuple[int, np.ndarray]]:
    """Run ``fn(images [n*T, 3, S, S], videos) -> [n*T, 1, h, w]`` over a split, ``videos`` being the
    slice of video indices in the batch; yields ``(start, [n, T, size, size])`` float32.

    ``images`` are on ``dist.device``; the maps come back to the CPU."""
    for start, frames in progress(frame_chunks(split), desc=f"maps {split}"):
        n, t = frames.shape[:2]
        images = normalize_images(torch.from_numpy(frames.reshape(n * t, *frames.shape[2:])))
        maps = fn(dist.inputs(images), slice(start, start + n)).float().cpu()
        yield start, upsample(maps, size).view(n, t, size, size).numpy()
