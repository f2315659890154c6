from pathlib import Path

import pytest

from tests.helpers import LEARNING, run_tiny_dag

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
    """The whole DAG on 36 tiny clips (``LEARNING``), once per session (~2 min on 2 cores); its root."""
    root = tmp_path_factory.mktemp("learning")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_tiny_dag(root, LEARNING)
    return root
