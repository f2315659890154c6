"""The one training loop of every trained stage (align, c2am, saliency, affinity, the CAM probe,
train_seg). A stage supplies its model, optimiser, batches and loss; the loop gives all of them
the same tools:

* lr linear warm-up then cosine decay, stepped once per optimiser step;
* DDP (``dist.prepare``) and bf16 autocast on GPU (``dist.autocast``);
* a finite-loss check on every step that names the lr param to lower;
* weight EMA (``ema`` > 0), with a warm-up, used for validation and as the kept model;
* a loss curve: the untrained net's loss on the first batch, then per log point (an epoch, or
  ``seg.val_every`` steps) the mean loss and whatever ``validate`` returns;
* resume: at every log point ``on_log`` receives the whole training state; passing it back as
  ``start`` continues exactly there (batches are a pure function of the step index).

Under torchrun every process draws the same global batch and trains on its share. ``step``
returns two losses: ``local``, a mean over this process's share (DDP averages its gradient), and
``coupled``, a loss over the gathered global batch that is the same on every process (its backward
is scaled by the world size to undo DDP's averaging). The logged loss is ``coupled`` + the mean of
``local`` over processes: the global loss.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from avs_core.engine.distributed import DistInfo, mean_over_processes
from avs_core.engine.schedule import warmup_cosine_scheduler
from avs_core.runtime import progress, require_finite_loss

log = logging.getLogger(__name__)


class StepLoss(NamedTuple):
    local: torch.Tensor    # mean over this process's share of the batch (0-dim)
    coupled: torch.Tensor  # over the gathered global batch, identical on every process (0-dim)


def local_loss(x: torch.Tensor) -> StepLoss:
    return StepLoss(x, x.new_zeros(()))


def coupled_loss(x: torch.Tensor) -> StepLoss:
    return StepLoss(x.new_zeros(()), x)


@dataclass(frozen=True)
class LoopSpec:
    """How long and how a stage trains.

    Attributes:
        name: in logs and errors (``align``, ``train_seg[pseudo]``).
        lr_key: the param a diverged run should lower (``alignment.lr``).
        steps: optimiser steps in all.
        log_every: steps per log point (an epoch's steps, or ``seg.val_every``); the last point
            is at ``steps`` whatever the remainder.
        warmup: linear warm-up steps.
        ema: weight-EMA decay, 0 = off.
    """

    name: str
    lr_key: str
    steps: int
    log_every: int
    warmup: int = 0
    ema: float = 0.0


def ema_update(decay: float):
    """EMA with a warm-up (``min(decay, (1 + n) / (10 + n))`` at update n), so short runs are not
    dominated by the initial weights."""
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        for avg, cur in zip(averaged, current):
            if avg.is_floating_point():
                avg.lerp_(cur, 1 - d)
            else:  # BatchNorm's step counter
                avg.copy_(cur)

    return update


def log_points(spec: LoopSpec) -> list[int]:
    """The step counts after which the loop logs (validates, reports, offers a resume state)."""
    return sorted({*range(spec.log_every, spec.steps + 1, spec.log_every), spec.steps})


def train(model: nn.Module, opt: torch.optim.Optimizer, spec: LoopSpec, batch_at: Callable[[int], Any],
          step: Callable[[nn.Module, Any], StepLoss], dist: DistInfo, *,
          validate: Callable[[nn.Module], dict] | None = None,
          on_log: Callable[[int, dict, dict], None] | None = None,
          start: dict | None = None) -> dict:
    """Run ``spec.steps`` optimiser steps of ``step(model, batch_at(i))``.

    Args:
        model: the bare model (the loop wraps it for DDP).
        batch_at: the i-th batch, a pure function of ``i`` (and the stage's seed).
        step: the losses of one batch, given the (DDP-wrapped) model, computed under autocast.
        validate: metrics of the kept (EMA or live) model at each log point; it may switch the
            model to eval mode, the loop switches back.
        on_log: ``on_log(point, metrics, state)`` on every process at each log point; ``state``
            is what ``start`` takes to resume after that point.
        start: a ``state`` from ``on_log``.

    Returns:
        ``{"initial": loss of the untrained net on the first batch, "points": [metrics per log
        point], "kept": the EMA model (or ``model``)}``. ``metrics`` holds ``step``, ``loss`` (the
        mean since the last point) and the ``validate`` results.
    """
    step_model = dist.prepare(model)
    sched = warmup_cosine_scheduler(opt, spec.steps, spec.warmup)
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=ema_update(spec.ema), use_buffers=True) \
        if spec.ema > 0 else None
    kept = ema.module if ema is not None else model
    history = {"initial": math.nan, "points": []}
    first = 0
    if start is not None:
        model.load_state_dict(start["model"])
        opt.load_state_dict(start["optimizer"])
        sched.load_state_dict(start["scheduler"])
        if ema is not None:
            ema.load_state_dict(start["ema"])
        torch.set_rng_state(start["torch_rng"])
        history = {"initial": start["initial"], "points": list(start["points"])}
        first = start["step"]
    points = [p for p in log_points(spec) if p > first]
    total, done = 0.0, 0
    model.train()
    for i in progress(range(first, spec.steps), desc=spec.name, total=spec.steps - first):
        batch = batch_at(i)
        with dist.autocast():
            loss = step(step_model, batch)
        local, coupled = loss.local.float(), loss.coupled.float()
        opt.zero_grad(set_to_none=True)
        (local + coupled * dist.world).backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        value = float(coupled.detach() + (mean_over_processes(local.detach()) if dist.world > 1 else local.detach()))
        total += require_finite_loss(value, f"{spec.name} step {i + 1}", spec.lr_key)
        done += 1
        if math.isnan(history["initial"]):
            history["initial"] = value
        if points and i + 1 == points[0]:
            points.pop(0)
            metrics = {"step": i + 1, "loss": total / done}
            if validate is not None:
                metrics.update(validate(kept))
                model.train()
            history["points"].append(metrics)
            log.info("%s step %d/%d: %s", spec.name, i + 1, spec.steps,
                     ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "step"))
            total, done = 0.0, 0
            if on_log is not None:
                on_log(i + 1, metrics, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None, "torch_rng": torch.get_rng_state(),
                    "step": i + 1, "initial": history["initial"], "points": list(history["points"])})
    return {**history, "kept": kept}
