"""Stage ``manifest``: the dataset folder's file list (``paths.manifest``), ``prepare``'s cheap
dependency. It runs on every ``dvc repro`` (``always_changed``) and imports no torch."""
from __future__ import annotations

import logging

from avs_core.config import Params
from avs_core.pipeline.manifest import write_manifest
from stages._common import run_stage


def work(params: Params) -> None:
    count = write_manifest(params.data.root, params.paths.manifest)
    logging.getLogger("stages.manifest").info("%d files under %s", count, params.data.root)


def main(argv: list[str] | None = None) -> int:
    return run_stage("manifest", work, argv, uses_torch=False)


if __name__ == "__main__":
    raise SystemExit(main())
