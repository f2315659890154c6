"""Worker for tests/test_ddp.py: a few alignment steps, the same code path with or without torchrun."""
import sys

import numpy as np
import torch
from torch import nn

from avs_core.pipeline import align
from avs_core.config import AlignmentParams
from avs_core.data.splits import SplitArrays
from avs_core.engine.distributed import init_distributed


def no_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        else:
            no_batchnorm(child)


def split(n, seed):
    r = np.random.default_rng(seed)
    return SplitArrays([str(i) for i in range(n)], np.arange(n) % 3, r.integers(0, 255, (n, 5, 3, 32, 32), np.uint8),
                       np.ones((n, 5), bool), r.standard_normal((n, 5, 1, 257, 20)).astype(np.float32), ["a", "b", "c"])


def main(out: str) -> None:
    torch.manual_seed(0)
    dist = init_distributed()
    p = AlignmentParams(dim=16, proj_dropout=0.0, image_size=32, epochs=1, batch_size=8, lr=1e-3, mask_drop=0.3,
                        augment=True, tau=0.1)
    model = align.AlignModel(p, classes=3)  # the weak-label heads too: the prototypes must sync under DDP
    no_batchnorm(model)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    losses = []
    align.train(model, split(8, 0), split(4, 1), p, dist, lambda e, m, s: losses.append(m["loss"]))
    if dist.is_main:
        torch.save({"init": init, "state": model.state_dict(), "loss": losses}, out)


if __name__ == "__main__":
    main(sys.argv[1])
