"""DVCLive loggers configured for a pipeline stage: no dvc.yaml edits, no experiment saving."""
from __future__ import annotations

import shutil
from pathlib import Path

from dvclive import Live


def live_logger(directory: str | Path) -> Live:
    """A fresh DVCLive logger writing ``metrics.json`` and ``plots/metrics/*.tsv`` under ``directory``.

    The directory is (part of) a stage output, written inside the stage's ``atomic_dir``; it is
    emptied first so a re-run does not append to stale curves.
    """
    shutil.rmtree(directory, ignore_errors=True)
    return Live(str(directory), dvcyaml=False, save_dvc_exp=False, report=None)
