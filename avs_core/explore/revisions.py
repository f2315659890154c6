"""The stored outputs of a git revision or a DVC experiment, for ``avs inspect --compare``.

Read through ``dvc.api.DVCFileSystem(repo, rev=...)``: it resolves branches, tags, commits and
experiment names alike, and reads each output's HDF5 file straight from the DVC cache by the md5
that revision's ``dvc.lock`` records. The alternative, ``dvc exp apply`` into a copy, would check
out whole revisions (datasets included) and, in the user's own workspace, overwrite uncommitted
work; this reads only the few files the explorer shows and touches nothing.
"""
from __future__ import annotations

from pathlib import Path

WORKSPACE = "workspace"


class RevisionError(RuntimeError):
    """A revision that is unknown, or whose outputs are not in the DVC cache."""


def materialize(rev: str, files: list[str], required: set[str], dest: Path, repo: Path = Path(".")) -> Path:
    """Copy the ``files`` (paths relative to the repository) that ``rev`` holds into ``dest``
    under the same relative paths; returns ``dest``. Those in ``required`` must exist.

    Raises:
        RevisionError: ``rev`` is neither a git revision nor an experiment of ``repo``, or its
            required files are not in the DVC cache.
    """
    from dvc.api import DVCFileSystem
    from dvc.scm import RevError

    try:
        fs = DVCFileSystem(str(repo), rev=rev)
        fs.read_text("dvc.yaml")
    except RevError:
        raise RevisionError(f"'{rev}' is neither a git revision nor a DVC experiment of {repo.resolve()} "
                            "(see `git log` and `dvc exp list`)") from None
    except FileNotFoundError:
        raise RevisionError(f"revision '{rev}' has no dvc.yaml: it predates the pipeline") from None
    for path in files:
        if not fs.exists(path):
            if path in required:
                raise RevisionError(
                    f"revision '{rev}' has no {path} in the DVC cache: its dvc.lock records outputs that were "
                    "never produced (or were garbage-collected) in this repository. Produce them with "
                    f"`dvc exp run` from that revision, or fetch them with `dvc pull` (needs a remote), then retry")
            continue
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs.get_file(path, str(target))
        except Exception as exc:  # DVC raises several cache / index errors for the same cause
            raise RevisionError(f"revision '{rev}': cannot read {path} from the DVC cache ({exc}); "
                                "`dvc pull` or re-run the experiment") from None
    return dest
