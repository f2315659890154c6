"""The alignment loop under torchrun (2 CPU processes, gloo) matches one process with the same global batch."""
import dataclasses
import importlib
import logging
import os
import re
import subprocess
import sys

import pytest
import torch

from avs_core.config import ComputeParams
from stages.launch import torchrun_args
from tests.helpers import REPO, write_params


ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "one.pt"
    single = subprocess.run([sys.executable, "-m", "tests.ddp_align_worker", str(out)],
                            cwd=REPO, env=ENV, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    return torch.load(out)


def test_two_processes_match_one(tmp_path, one_process):
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
                            "-m", "tests.ddp_align_worker", str(tmp_path / "two.pt")],
                           cwd=REPO, env=ENV, capture_output=True, text=True)
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert_same_run(one_process, torch.load(tmp_path / "two.pt"))


def test_two_nodes_match_one_process(tmp_path, one_process):
    """Two torchrun agents, ``--nnodes 2`` on 127.0.0.1 with the launcher's multi-node options
    (``compute.nnodes: 2``, static rendezvous at node 0): the same run as one process."""
    compute = ComputeParams(nnodes=2, rdzv_endpoint="127.0.0.1:29519")
    agents = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run",
                                *torchrun_args(dataclasses.replace(compute, node_rank=rank)),
                                "-m", "tests.ddp_align_worker", str(tmp_path / "nodes.pt")],
                               cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for rank in (0, 1)]
    for agent in agents:
        _, err = agent.communicate(timeout=600)
        assert agent.returncode == 0, err[-3000:]
    assert_same_run(one_process, torch.load(tmp_path / "nodes.pt"))


def assert_same_run(one: dict, two: dict) -> None:
    assert abs(one["loss"][0] - two["loss"][0]) < 1e-4 * abs(one["loss"][0])
    # Summation order differs between 1 and 2 processes; Adam turns that noise on near-zero
    # gradients into steps of up to ~lr on a few weights (how many depends on the CPU). The update
    # as a whole must still be the same one: same direction, same size.
    def update(run):
        return torch.cat([(run["state"][k] - run["init"][k]).flatten().double() for k in run["init"]])

    u1, u2 = update(one), update(two)
    assert torch.equal(torch.cat([v.flatten() for v in one["init"].values()]),
                       torch.cat([v.flatten() for v in two["init"].values()]))
    assert torch.nn.functional.cosine_similarity(u1, u2, dim=0) > 0.99
    assert abs(u1.norm() - u2.norm()) < 0.02 * u1.norm()
    assert (u1 - u2).abs().max() < 5 * 1e-3


def epoch1_loss(log: str) -> float:
    """The first logged training loss (the engine loop's first log point: epoch 1, or train_seg's
    first validation step)."""
    return float(re.search(r"step \d+/\d+: loss ([-\d.]+)", log).group(1))


def test_every_training_stage_runs_under_torchrun(tmp_path, monkeypatch, caplog):
    """``compute.nproc: 2`` runs each training stage as 2 gloo processes through ``stages.launch``;
    the first-epoch loss stays close to the single-process one (BatchNorm statistics are per
    process on CPU, so not bit-equal), and only rank 0 writes outputs."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # seg batch of 8 frames: 4 per process, so per-process BatchNorm statistics are not of one frame
    tiny = {"data": {"synthetic": {"videos_train": 8}}, "seg": {"batch_size": 8}}
    params = write_params(tmp_path, tiny)
    monkeypatch.chdir(tmp_path)
    single = {}  # the single-process runs in this process: 10 interpreter starts fewer
    for stage in ("synthesize", "prepare", "spectrograms", "align", "c2am", "saliency", "pamr", "affinity",
                  "crf", "train_seg"):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert importlib.import_module(f"stages.{stage}").main(["--params", str(params)]) == 0, caplog.text[-3000:]
        single[stage] = caplog.text
    write_params(tmp_path, {**tiny, "compute": {"nproc": 2}})
    for stage in ("align", "c2am", "saliency", "affinity", "train_seg"):
        out = subprocess.run([sys.executable, "-m", "stages.launch", stage], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"{stage}: 2 processes (torchrun)" in out.stderr
        one, two = epoch1_loss(single[stage]), epoch1_loss(out.stderr)
        assert abs(one - two) < 0.15 * abs(one), (stage, one, two)
        assert not list(tmp_path.rglob(".*.tmp-*"))
    assert sorted(p.name for p in (tmp_path / "data/seg").iterdir()) == ["full", "none", "pseudo"]


def test_launcher_rejects_batch_not_divisible_by_nproc(tmp_path):
    write_params(tmp_path, {"compute": {"nproc": 3}})
    out = subprocess.run([sys.executable, "-m", "stages.launch", "align"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2 and "alignment.batch_size" in out.stderr and "compute.nproc=3" in out.stderr


def test_launcher_builds_the_multi_node_command(tmp_path, monkeypatch):
    write_params(tmp_path, {"compute": {"nnodes": 2, "rdzv_endpoint": "10.0.0.1:29400"}})
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(os, "execv", lambda exe, argv: calls.append(argv))
    from stages import launch

    launch.main(["align", "--node-rank", "1"])
    assert calls[0][3:8] == ["--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29400",
                             "--nproc_per_node=1"]
    assert calls[0][-4:] == ["-m", "stages.align", "--params", "params.yaml"]
    assert launch.main(["align", "--node-rank", "2"]) == 2  # no such node: a clear params error
