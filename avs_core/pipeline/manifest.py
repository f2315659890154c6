"""Stage logic for ``manifest``: one line per file of the dataset folder (path, size, mtime).

``prepare`` depends on this small file instead of on the dataset folder, so a no-op ``dvc repro``
stats the folder's files once (here) instead of DVC hashing every PNG and WAV of it; any added,
removed, resized or rewritten file still changes the manifest and re-runs ``prepare``. The stage
is ``always_changed`` in ``dvc.yaml``: it runs on every ``dvc repro`` and takes well under a second
at AVSBench size (0.8 s, ``docs/BENCHMARKS.md``). It imports no torch, to start fast.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from avs_core.config import ParamError
from avs_core.store import atomic_path


class ManifestError(ParamError):
    """``data.root`` does not exist or is empty."""

    def __init__(self, message: str):
        super().__init__("data.root", message)


def dataset_manifest(root: str | Path) -> str:
    """``"relative/path\\tsize\\tmtime_ns\\n"`` for every file under ``root`` (symlinks followed), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"dataset folder {root} does not exist; set -S data.root=<the folder holding "
                            "Single-source/ or Multi-sources/> (or data.source=synthetic for the embedded dataset)")
    lines = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            st = path.stat()
            lines.append(f"{path.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n")
    if not lines:
        raise ManifestError(f"dataset folder {root} is empty; point data.root at your AVSBench copy")
    return "".join(sorted(lines))


def dvcignore_hint(root: str | Path, project: str | Path) -> str | None:
    """What to do when a user's dataset folder ``root`` lies inside the DVC project ``project``
    and neither ``.dvcignore`` (a line naming it or a folder above it) nor git ignores it; ``None``
    otherwise.

    DVC walks every folder of the workspace that neither excludes, on every command: a no-op
    ``dvc repro`` with AVSBench S4 inside the project took 4.7 s instead of 2.6 s
    (``docs/BENCHMARKS.md``). The dataset needs no DVC tracking (this stage lists it), so excluding
    it loses nothing.
    """
    project = Path(project).resolve()
    try:
        rel = Path(root).resolve().relative_to(project).as_posix()
    except ValueError:
        return None  # outside the project: DVC never walks it
    ignore = project / ".dvcignore"
    listed = [line.strip().strip("/") for line in (ignore.read_text().splitlines() if ignore.is_file() else [])]
    if any(entry and not entry.startswith("#") and (rel == entry or rel.startswith(entry + "/")) for entry in listed):
        return None
    try:
        if subprocess.run(["git", "check-ignore", "-q", rel], cwd=project, capture_output=True).returncode == 0:
            return None
    except OSError:  # no git: only .dvcignore counts
        pass
    return (f"the dataset folder {rel}/ is inside the project and neither .dvcignore nor .gitignore lists it: every "
            f"dvc command walks all of its folders (a no-op dvc repro at AVSBench size: 4.7 s instead of 2.6 s). "
            f"Add the line '/{rel}/' to .dvcignore, or keep the dataset outside the project")


def write_manifest(root: str | Path, out: str | Path) -> int:
    """Write the manifest of ``root`` to ``out`` atomically; returns the number of files."""
    text = dataset_manifest(root)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)
    return text.count("\n")
