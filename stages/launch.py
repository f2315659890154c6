"""Launcher of the training stages: ``python -m stages.launch <stage> --params params.yaml``.

With ``compute.nproc: 1`` the stage runs in this process. With more it runs under ``torchrun``
(``--standalone``: a free local port, so queued experiments do not collide), one process per
share of the batch; DDP then uses gloo on CPU and nccl on GPU. Several GPUs of one machine:
set ``compute.nproc`` to their number.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from avs_core.config import ParamError, load_params
from avs_core.runtime import setup_logging
from stages._common import EXIT_BAD_INPUT

TRAINING_STAGES = ("align", "c2am", "saliency", "affinity", "train_seg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.launch", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=TRAINING_STAGES)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        nproc = load_params(args.params).compute.nproc
    except ParamError as exc:
        logging.getLogger("stages.launch").error("%s", exc)
        return EXIT_BAD_INPUT
    stage_argv = ["--params", args.params]
    if nproc == 1:
        return importlib.import_module(f"stages.{args.stage}").main(stage_argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", f"stages.{args.stage}", *stage_argv]
    logging.getLogger("stages.launch").info("%s: %d processes (torchrun)", args.stage, nproc)
    sys.stdout.flush()
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    raise SystemExit(main())
