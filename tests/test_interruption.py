"""Killing a stage mid-run leaves no partial output, and the next run gives the same result."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, tree_digest, write_params

BIG = {"data": {"synthetic": {"videos_train": 60, "videos_val": 10, "videos_test": 10, "frame_size": 96}}}


def interruptible() -> None:
    """Child setup: SIGINT back to its default. A shell without job control starts background
    commands with SIGINT ignored (e.g. `bash scripts/test.sh &`, or a CI runner doing so), Python
    then installs no KeyboardInterrupt handler, and the signal these tests send would be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(workdir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "stages.synthesize"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=interruptible)


def wait_until_writing(workdir: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 600  # only a guard against a hang: slow or busy machines take long
    while time.time() < deadline and proc.poll() is None:
        tmp = list((workdir / "data").glob(".avsbench_synthetic.tmp-*")) if (workdir / "data").is_dir() else []
        if tmp and any(tmp[0].rglob("*.png")):
            return
        time.sleep(0.05)
    pytest.fail("the stage never started writing")


@pytest.fixture
def reference(tmp_path_factory):
    ref = tmp_path_factory.mktemp("ref")
    write_params(ref, BIG)
    assert start(ref).wait() == 0
    return tree_digest(ref / "data/avsbench_synthetic")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killed_stage_leaves_nothing_and_rerun_matches(workdir, reference, sig):
    write_params(workdir, BIG)
    proc = start(workdir)
    wait_until_writing(workdir, proc)
    proc.send_signal(sig)
    rc = proc.wait(timeout=60)
    assert rc != 0
    assert not (workdir / "data/avsbench_synthetic").exists()
    leftovers = list((workdir / "data").glob(".avsbench_synthetic.tmp-*"))
    if sig == signal.SIGKILL:
        assert leftovers  # nothing can clean up after SIGKILL: the next run must
    else:
        assert leftovers == [], leftovers
        assert b"interrupted" in proc.stderr.read()
    assert start(workdir).wait() == 0
    assert list((workdir / "data").glob(".avsbench_synthetic.tmp-*")) == []
    assert tree_digest(workdir / "data/avsbench_synthetic") == reference


# --- training and map stages -----------------------------------------------------------------

CHAIN = {"data": {"synthetic": {"videos_train": 8, "videos_val": 4, "videos_test": 4}},
         "alignment": {"epochs": 2}}
STAGE_OUTPUTS = {"align": ["models/align.pt", "data/align", "reports/align"],
                 "pamr": ["data/pseudo/pamr", "reports/pamr"]}


def run_stage(workdir: Path, stage: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=workdir, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]


def outputs_digest(workdir: Path, stage: str) -> dict:
    digest = {}
    for rel in STAGE_OUTPUTS[stage]:
        path = workdir / rel
        digest.update({f"{rel}/{k}": v for k, v in tree_digest(path).items()} if path.is_dir()
                      else {rel: hashlib.md5(path.read_bytes()).hexdigest()})
    return digest


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Upstream outputs up to ``pamr``, run once without interruption; digests of align and pamr."""
    root = tmp_path_factory.mktemp("chain")
    write_params(root, CHAIN)
    for stage in ("synthesize", "prepare", "spectrograms", "align", "c2am", "saliency", "pamr"):
        run_stage(root, stage)
    return root, {stage: outputs_digest(root, stage) for stage in STAGE_OUTPUTS}


def started(workdir: Path, stage: str, log: Path) -> bool:
    if stage == "align":  # mid-training: the first log point (epoch 1 of 2) is done
        return b"align step " in log.read_bytes()
    return any((workdir / "data/pseudo").glob(".pamr.tmp-*"))  # maps are being written


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("stage", ["align", "pamr"])
def test_killed_training_or_map_stage_recovers(chain, tmp_path, stage, sig):
    root, reference = chain
    work = tmp_path / "w"
    shutil.copytree(root, work)
    for rel in STAGE_OUTPUTS[stage]:
        shutil.rmtree(work / rel) if (work / rel).is_dir() else (work / rel).unlink()
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", f"stages.{stage}"], cwd=work, stderr=err,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=interruptible)
        deadline = time.time() + 600  # only a guard against a hang
        while not started(work, stage, log):
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.02)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) != 0
    assert not any((work / rel).exists() for rel in STAGE_OUTPUTS[stage])
    if sig == signal.SIGINT:
        assert b"interrupted" in log.read_bytes()
        assert not list(work.rglob(".*.tmp-*"))
    run_stage(work, stage)
    assert not list(work.rglob(".*.tmp-*"))
    assert outputs_digest(work, stage) == reference[stage]


def test_nan_in_an_upstream_map_stops_the_stage_naming_the_video(chain, tmp_path):
    import h5py

    root, _ = chain
    work = tmp_path / "w"
    shutil.copytree(root, work)
    shutil.rmtree(work / "data/pseudo/pamr")
    with h5py.File(work / "data/align/train.h5", "r+") as f:
        for key in ("fused", "scale1", "scale2", "scale3"):  # whichever stages pamr.coarse picks
            f[key][2, 1, 1, 1] = np.nan
        bad_id = f["ids"][2].decode()
    out = subprocess.run([sys.executable, "-m", "stages.pamr"], cwd=work, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2
    assert bad_id in out.stderr and "data/align/train.h5" in out.stderr and "NaN" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (work / "data/pseudo/pamr").exists() and not list(work.rglob(".*.tmp-*"))
