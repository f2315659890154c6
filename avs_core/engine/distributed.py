"""How a training stage uses the machine: one code path for 1 process and for ``torchrun`` (DDP),
CPU or GPU, with bf16 autocast and ``channels_last`` on GPU only (CPU runs stay bit-exact)."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job and the accelerator settings that apply to it.

    ``amp`` and ``channels_last`` are only ever true on a CUDA device.
    """

    rank: int
    world: int
    device: torch.device
    amp: bool = False
    channels_last: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        """bf16 autocast on GPU when ``compute.amp``; a no-op context otherwise."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Move an image batch ``[N, C, H, W]`` to the device, in the model's memory format."""
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device (NHWC on GPU when asked) and wrap it in DDP under torchrun.

        Returns the module to call in the training step; ``model`` itself keeps the weights (save,
        evaluate and predict with it). BatchNorm becomes SyncBatchNorm on GPU; on CPU (gloo) each
        process normalises with its own slice of the batch, as plain DDP does.
        """
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.world == 1 or not any(q.requires_grad for q in model.parameters()):
            return model
        if self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    def local(self, batch: np.ndarray, key: str) -> np.ndarray:
        """This process's equal share of a global batch that every process drew identically."""
        if len(batch) % self.world:
            raise ValueError(f"{key}={len(batch)} is not divisible by the {self.world} processes (compute.nproc x compute.nnodes)")
        n = len(batch) // self.world
        return batch[self.rank * n:(self.rank + 1) * n]


SINGLE = DistInfo(0, 1, torch.device("cpu"))


def init_distributed(compute=None) -> DistInfo:
    """Join the process group ``torchrun`` describes (gloo on CPU, nccl on GPU); single process otherwise.

    Args:
        compute: ``ComputeParams`` (``amp``, ``channels_last``); ``None`` leaves both off.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    amp = bool(cuda and compute is not None and compute.amp)
    channels_last = bool(cuda and compute is not None and compute.channels_last)
    return DistInfo(dist.get_rank() if world > 1 else 0, world, device, amp, channels_last)


def gather_keep_local(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all processes along dim 0; only this process's slice keeps its gradient.

    Every process then computes the same global loss; scaling its backward by the world size
    undoes DDP's gradient averaging, so the update equals the single-process one on the same
    global batch.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    """The mean of a (detached) per-process value over all processes; ``x`` itself in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def broadcast_from_main(value: np.ndarray | None, info: DistInfo) -> np.ndarray:
    """Rank 0's array on every process (for work done once, like the CRF-cleaned saliency cues)."""
    if info.world == 1:
        return value
    box = [value if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
