"""dvc.yaml matches the code: each stage depends on exactly the project modules it imports, and
every declared param exists."""
from pathlib import Path

import pytest
import yaml

from avs_core.config import params_from_dict
from stages import deps
from stages.deps import stage_modules
from stages.launch import TRAINING_STAGES

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_the_modules_it_imports(name):
    stage = STAGES[name]
    if name in TRAINING_STAGES:  # the launcher imports the stage module by name (importlib)
        assert stage["cmd"] == f"python -m stages.launch {name} --params params.yaml"
        assert {"compute.nproc", "compute.amp", "compute.channels_last"} <= set(stage["params"])
    else:
        assert stage["cmd"] == f"python -m stages.{name} --params params.yaml"
    needed = set(stage_modules(name))
    declared = {d for d in stage["deps"] if d.endswith(".py")}
    assert needed - declared == set(), f"{name}: imported but not in deps (run `python -m stages.deps --write`)"
    assert declared - needed == set(), f"{name}: in deps but not imported (run `python -m stages.deps --write`)"


def test_deps_generator_checks_and_rewrites():
    assert deps.main(["--check"]) == 0
    text = (REPO / "dvc.yaml").read_text()
    broken = text.replace("      - avs_core/learning.py\n", "", 1)
    assert broken != text and deps.rewrite(broken, list(STAGES)) == text


@pytest.mark.parametrize("name", sorted(STAGES))
def test_declared_params_exist(name):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params_from_dict(params)
    for key in STAGES[name].get("params", []):
        node = params
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{name}: param {key} not in params.yaml"
            node = node[part]


def test_pycache_is_ignored():
    assert "__pycache__/" in (REPO / ".dvcignore").read_text()


def test_lock_records_the_code_in_the_tree():
    """The committed dvc.lock was written by `dvc repro` on this very code (DVC workflow: run, then
    commit dvc.lock with the tracked reports), so a fresh clone's `dvc status` starts clean and
    `dvc exp show` / `avs inspect --compare HEAD` have a baseline. Reads files only."""
    import hashlib

    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(STAGES), "dvc.lock lacks stages of dvc.yaml: run `dvc repro` and commit dvc.lock"
    stale = sorted({d["path"] for stage in lock.values() for d in stage.get("deps", [])
                    if d["path"].endswith(".py") and (not (REPO / d["path"]).is_file()
                                                      or hashlib.md5((REPO / d["path"]).read_bytes()).hexdigest() != d["md5"])})
    assert not stale, f"dvc.lock records other versions of {stale}: run `dvc repro` and commit dvc.lock"


def test_constraints_pin_every_dependency():
    """scripts/setup.sh installs with -c constraints.txt: every direct dependency has an exact pin."""
    import re

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for dep in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ]", dep)[0]).lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
        exact = re.search(r"==\s*([^,\s]+)", dep)
        assert not exact or exact.group(1) == pins[name], f"{name}: pyproject pins {exact.group(1)}, constraints {pins[name]}"


@pytest.mark.parametrize("module", ["stages.manifest", "stages.crf"])
def test_torch_free_entry_points(module):
    """``manifest`` runs on every ``dvc repro`` and spawned CRF workers re-import ``stages.crf``:
    neither may pay for importing torch (seconds per process)."""
    import subprocess
    import sys

    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0, f"{module} imports torch"
