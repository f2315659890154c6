"""Killing a stage mid-run leaves no partial output, and the next run gives the same result."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, write_params

BIG = {"data": {"synthetic": {"videos_train": 60, "videos_val": 10, "videos_test": 10, "frame_size": 96}}}


def tree_digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def start(workdir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "stages.synthesize"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until_writing(workdir: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 60
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
