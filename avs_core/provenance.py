"""Which code wrote an output: the ``code_version`` attribute of every HDF5 file."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from avs_core import __version__

REPO = Path(__file__).resolve().parent.parent
CODE_PATHS = ("avs_core", "stages", "pyproject.toml")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def code_version(root: Path = REPO) -> str:
    """``<package version>+g<commit>``, the commit being the last one that changed the code
    (``CODE_PATHS``); ``<package version>+dirty`` when the code differs from it; the package
    version alone outside a git checkout (an installed wheel).

    Why the last *code* commit and not HEAD: a commit that only records results (``dvc.lock``,
    reports) must not change the bytes of the outputs, or no later checkout could reproduce the
    ``dvc.lock`` it holds.
    """
    commit = _git(root, "log", "-1", "--format=%H", "--", *CODE_PATHS)
    if not commit:
        return __version__
    changed = _git(root, "status", "--porcelain", "--", *CODE_PATHS)
    return f"{__version__}+dirty" if changed is None or changed else f"{__version__}+g{commit[:12]}"
