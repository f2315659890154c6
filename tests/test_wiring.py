"""dvc.yaml matches the code: each stage depends on exactly the project modules it imports, and
every declared param exists."""
import ast
from pathlib import Path

import pytest
import yaml

from avs_core.config import params_from_dict
from stages.launch import TRAINING_STAGES

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC["stages"]


def module_file(name: str) -> Path | None:
    if not name.startswith(("avs_core", "stages")):
        return None
    base = REPO / Path(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def imports_of(path: Path) -> set[Path]:
    """Project files imported (transitively, any nesting level) by ``path``, package __init__s included."""
    seen, todo = set(), [path]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                    m = module_file(".".join(parts[:i]))
                    if m:
                        todo.append(m)
    return seen


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_the_modules_it_imports(name):
    stage = STAGES[name]
    entry = REPO / "stages" / f"{name}.py"
    if name in TRAINING_STAGES:  # the launcher imports the stage module by name (importlib)
        assert stage["cmd"] == f"python -m stages.launch {name} --params params.yaml"
        assert {"compute.nproc", "compute.amp", "compute.channels_last"} <= set(stage["params"])
        files = imports_of(entry) | imports_of(REPO / "stages/launch.py")
    else:
        assert stage["cmd"] == f"python -m stages.{name} --params params.yaml"
        files = imports_of(entry)
    needed = {p.relative_to(REPO).as_posix() for p in files} - {"stages/__init__.py"}
    declared = {d for d in stage["deps"] if d.endswith(".py")}
    assert needed - declared == set(), f"{name}: imported but not in deps"
    assert declared - needed == set(), f"{name}: in deps but not imported"


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
