"""Frame-level training and inference of the pseudo-mask networks (C^2AM, saliency, affinity) on the engine loop."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import TrainingParams, recorded, require_batch_fits
from avs_core.data.maps import frame_chunks
from avs_core.engine.checkpoint import Resumer
from avs_core.engine.distributed import SINGLE, DistInfo
from avs_core.engine.loop import LoopSpec, coupled_loss, local_loss, train
from avs_core.learning import Check, loss_check
from avs_core.models.encoders import normalize_images
from avs_core.runtime import progress


def upsample(maps: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, 1, h, w]`` -> ``[N, size, size]`` bilinear."""
    return F.interpolate(maps.float(), size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def flip_where(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Horizontal flip of ``x [B, ..., W]`` where ``flip`` [B] (bool) is set: images and their
    targets get the same flips."""
    return torch.where(flip.view((-1,) + (1,) * (x.ndim - 1)), x.flip(-1), x)


def fit(model: torch.nn.Module, frames: np.ndarray, targets: np.ndarray | None,
        loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor | None], torch.Tensor],
        p: TrainingParams, seed: int, desc: str, checkpoints: Path, dist: DistInfo = SINGLE,
        coupled: bool = False, inputs: Callable[[np.ndarray, torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Adam over frames (and aligned per-frame targets) with random horizontal flips, on the engine
    loop: lr warm-up (1 epoch) + cosine, finite-loss checks, DDP.

    ``loss_fn(model, images [b, 3, S, S], targets [b, ...] | None)`` is a per-sample mean, or, with
    ``coupled``, a loss over the gathered global batch (``gather_keep_local``). ``inputs(idx [b],
    flips [b] bool) -> [b, ...]``, when given, makes the model's input batch from the frame
    indices in place of the flipped, normalised frames (``frames`` then only gives the count):
    cached features of a frozen backbone, for example.

    Returns the loss curve: ``{"initial": loss of the untrained net on the first batch,
    "epochs": [mean loss per epoch]}`` (what :func:`learning_check` compares). The training state
    is kept after every epoch in ``<checkpoints>/<desc>.resume.pt`` (``paths.checkpoints``) (deleted at the end), from
    which ``p.resume`` continues an interrupted run.
    """
    require_batch_fits(f"{desc}.train.batch_size", p.batch_size, len(frames), "frames")
    per_epoch = len(frames) // p.batch_size
    spec = LoopSpec(desc, f"{desc}.train.lr", per_epoch * p.epochs, per_epoch, warmup=per_epoch)
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=p.lr, weight_decay=p.weight_decay)

    @functools.lru_cache(maxsize=1)
    def epoch_plan(epoch: int) -> tuple[np.ndarray, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(len(frames), generator=gen).numpy()[:per_epoch * p.batch_size]
        return order.reshape(per_epoch, p.batch_size), torch.rand(order.shape, generator=gen) < 0.5

    def batch_at(i: int):
        order, flips = epoch_plan(i // per_epoch)
        j = i % per_epoch
        idx = np.sort(order[j])
        mine = dist.local(np.arange(len(idx)), f"{desc}.train.batch_size")
        flip = flips.view(per_epoch, -1)[j][mine]
        target = None if targets is None else flip_where(torch.from_numpy(targets[idx[mine]]), flip)
        if inputs is not None:
            return inputs(idx[mine], flip), target
        return flip_where(normalize_images(torch.from_numpy(frames[idx[mine]])), flip), target

    def step(m, batch):
        images, target = batch
        loss = loss_fn(m, dist.inputs(images), None if target is None else target.to(dist.device))
        return coupled_loss(loss) if coupled else local_loss(loss)

    # resume state per epoch, keyed by the params and seed (``<desc>.train.resume`` continues from it)
    resumer = Resumer(Path(checkpoints) / f"{desc}.resume.pt", json.dumps({"train": recorded(p), "seed": seed}, sort_keys=True),
                      p.resume)
    history = train(model, opt, spec, batch_at, step, dist, start=resumer.restore(),
                    on_log=(lambda _n, _m, state: resumer.keep(state)) if dist.is_main else None)
    if dist.is_main:
        resumer.finish()
    return {"initial": history["initial"], "epochs": [pt["loss"] for pt in history["points"]]}


def learning_check(name: str, history: dict, margin: float = 0.9) -> Check:
    """These losses have no closed-form chance level; the untrained net's loss stands in for it."""
    return loss_check(f"{name}: train loss, last epoch vs untrained", history["epochs"][-1], history["initial"], margin)


@torch.no_grad()
def predict_maps(fn: Callable[[torch.Tensor, slice], torch.Tensor], prepared: Path, split: str, size: int,
                 dist: DistInfo = SINGLE) -> Iterator[tuple[int, np.ndarray]]:
    """Run ``fn(images [n*T, 3, S, S], videos) -> [n*T, 1, h, w]`` over a split, ``videos`` being the
    slice of video indices in the batch; yields ``(start, [n, T, size, size])`` float32.

    ``images`` are on ``dist.device``; the maps come back to the CPU."""
    for start, frames in progress(frame_chunks(prepared, split), desc=f"maps {split}"):
        n, t = frames.shape[:2]
        images = normalize_images(torch.from_numpy(frames.reshape(n * t, *frames.shape[2:])))
        maps = fn(dist.inputs(images), slice(start, start + n)).float().cpu()
        yield start, upsample(maps, size).view(n, t, size, size).numpy()
