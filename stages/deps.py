"""The code dependencies of every stage in ``dvc.yaml``: the project modules its entry point imports.

``python -m stages.deps --check`` fails (exit 1) when a stage's ``*.py`` deps differ from its
import closure; ``--write`` rewrites them in place (other deps, outs and params are kept as they
are). A training stage's entry point is also ``stages/launch.py``, which imports it by name.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import yaml

from stages.launch import TRAINING_STAGES  # run through stages.launch, which imports them by name

REPO = Path(__file__).resolve().parents[1]
DVC_YAML = REPO / "dvc.yaml"


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


def stage_modules(name: str) -> list[str]:
    """Sorted repo-relative paths of the modules stage ``name`` runs."""
    files = imports_of(REPO / "stages" / f"{name}.py")
    if name in TRAINING_STAGES:
        files |= imports_of(REPO / "stages" / "launch.py")
    return sorted(p.relative_to(REPO).as_posix() for p in files if p.name != "__init__.py" or p.parent.name != "stages")


def rewrite(text: str, stages: list[str]) -> str:
    """``dvc.yaml`` text with each stage's ``*.py`` deps replaced by :func:`stage_modules`."""
    out, stage, in_deps = [], None, False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent == 2 and stripped.endswith(":") and stripped[:-1] in stages:
            stage, in_deps = stripped[:-1], False
        elif stage and indent == 4 and stripped == "deps:":
            in_deps = True
            out.append(line)
            out += [f"      - {m}\n" for m in stage_modules(stage)]
            continue
        elif indent <= 4 and stripped:
            in_deps = False
        if in_deps and stripped.startswith("- ") and stripped.endswith(".py"):
            continue
        out.append(line)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.deps", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    parser.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml's code deps are not the import closure")
    args = parser.parse_args(argv)
    text = DVC_YAML.read_text()
    stages = list(yaml.safe_load(text)["stages"])
    new = rewrite(text, stages)
    if args.write:
        DVC_YAML.write_text(new)
        return 0
    if new != text:
        print("dvc.yaml's code deps differ from the stages' imports; run `python -m stages.deps --write`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
