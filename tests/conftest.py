import fcntl
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import LEARNING, one_torch_thread, run_tiny_dag

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Tests run from the repository root unless they chdir elsewhere."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    yield


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory for stage runs (outputs land under it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def learned_run(tmp_path_factory):
    """The whole DAG on 36 tiny clips (``LEARNING``), once per test session (74 s here); its root.
    Under xdist the first worker to ask computes it and the others wait for it (a file lock in the
    session's shared temp folder). It runs on one torch thread however pytest was started: what a
    tiny run learns depends on the float path, and test_learning's margins were measured on one
    thread, the path CI's workers take (test_learning's docstring has the 2-thread draw)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "learning"
    with open(shared / "learning.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".done").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            with pytest.MonkeyPatch.context() as mp, one_torch_thread():
                mp.chdir(root)
                run_tiny_dag(root, LEARNING)
            (root / ".done").touch()
    return root


# scripts/test.sh runs two xdist workers, one test module at a time each (--dist loadscope: a module's
# tests share module fixtures and state; test_dvc_pipeline's steps build on each other), in this
# order, heaviest first, the users of ``learned_run`` early so that one computes it while the other
# works through test_dvc_pipeline.
FIRST = ("test_dvc_pipeline", "test_explorer", "test_interruption", "test_ddp", "test_learning", "test_segmentation")


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on 2 cores: one thread each (subprocesses too),
        # or their OpenMP pools oversubscribe the cores and every torch call waits on the other's
        from avs_core.engine.parallel import single_threaded  # what the map stages' worker processes do

        single_threaded()


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))  # stable
