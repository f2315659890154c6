"""Which code wrote an output: the ``code_version`` attribute of every HDF5 file."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import yaml

from avs_core import __version__

REPO = Path(__file__).resolve().parent.parent
CODE_PATHS = ("avs_core", "stages", "pyproject.toml")
CODE_PREFIXES = ("avs_core/", "stages/")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def stage_code(root: Path, stage: str | None) -> tuple[str, ...]:
    """The code files ``stage`` runs: its ``avs_core/`` and ``stages/`` deps in ``root/dvc.yaml``
    (the import closure, which ``python -m stages.deps --check`` keeps exact); ``CODE_PATHS``,
    all of the code, for no stage or one that ``dvc.yaml`` does not list."""
    try:
        deps = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["deps"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return CODE_PATHS
    files = tuple(d for d in deps if isinstance(d, str) and d.startswith(CODE_PREFIXES))
    return files or CODE_PATHS


@functools.lru_cache(maxsize=None)
def code_version(root: Path = REPO, stage: str | None = None) -> str:
    """``<package version>+g<commit>``, the commit being the last one that changed the code that
    ``stage`` runs (:func:`stage_code`); ``<package version>+dirty`` when that code differs from
    it; the package version alone outside a git checkout (an installed wheel).

    Why that commit and not HEAD: a commit that only records results (``dvc.lock``, reports), or
    that changes another stage's code, must not change the bytes of this stage's outputs. DVC
    re-runs a stage exactly when its deps change; so does the stamp, and a fresh clone's
    ``dvc repro`` writes the bytes that ``dvc.lock`` holds for every stage.
    """
    paths = stage_code(root, stage)
    commit = _git(root, "log", "-1", "--format=%H", "--", *paths)
    if not commit:
        return __version__
    changed = _git(root, "status", "--porcelain", "--", *paths)
    return f"{__version__}+dirty" if changed is None or changed else f"{__version__}+g{commit[:12]}"
