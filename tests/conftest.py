from pathlib import Path

import pytest

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
