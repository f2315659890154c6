"""Launcher of the training stages: ``python -m stages.launch <stage> --params params.yaml``.

With ``compute.nproc: 1`` the stage runs in this process. With more it runs under ``torchrun``
(``--standalone``: a free local port, so queued experiments do not collide), one process per
share of the batch; DDP then uses gloo on CPU and nccl on GPU. Several GPUs of one machine:
set ``compute.nproc`` to their number.

Several machines (``compute.nnodes`` > 1): torchrun's static multi-node launch, node 0 at
``compute.rdzv_endpoint`` (``--master_addr`` / ``--master_port``), this machine being
``compute.node_rank`` (or ``--node-rank``, for machines that share node 0's checkout and
``params.yaml``). Global rank 0 (on node 0) writes the outputs, so the machines need a shared
filesystem; the README lists the commands per node.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import os
import sys

from avs_core.config import ComputeParams, ParamError, load_params
from avs_core.runtime import setup_logging
from stages._common import EXIT_BAD_INPUT

TRAINING_STAGES = ("align", "c2am", "saliency", "affinity", "train_seg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.launch", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=TRAINING_STAGES)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--node-rank", type=int, default=None,
                        help="this machine's rank (default: compute.node_rank); for machines sharing node 0's params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    log = logging.getLogger("stages.launch")
    try:
        compute = load_params(args.params).compute
        if args.node_rank is not None:
            compute = dataclasses.replace(compute, node_rank=args.node_rank)
            compute.validate("compute")
    except ParamError as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT
    stage_argv = ["--params", args.params]
    if compute.world == 1:
        return importlib.import_module(f"stages.{args.stage}").main(stage_argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", *torchrun_args(compute),
           "-m", f"stages.{args.stage}", *stage_argv]
    if compute.nnodes == 1:
        log.info("%s: %d processes (torchrun)", args.stage, compute.nproc)
    else:
        log.info("%s: node %d of %d, %d processes each (torchrun, node 0 at %s)", args.stage, compute.node_rank,
                 compute.nnodes, compute.nproc, compute.rdzv_endpoint)
    sys.stdout.flush()
    os.execv(sys.executable, cmd)


def torchrun_args(compute: ComputeParams) -> list[str]:
    """torchrun's launch options for ``compute``: standalone on one machine, static rendezvous at
    node 0's ``rdzv_endpoint`` across several."""
    if compute.nnodes == 1:
        return ["--standalone", f"--nproc_per_node={compute.nproc}"]
    host, _, port = compute.rdzv_endpoint.rpartition(":")
    return [f"--nnodes={compute.nnodes}", f"--node_rank={compute.node_rank}", f"--master_addr={host}",
            f"--master_port={port}", f"--nproc_per_node={compute.nproc}"]


if __name__ == "__main__":
    raise SystemExit(main())
