"""Stage ``manifest``: the dataset folder's file list (``paths.manifest``), ``prepare``'s cheap
dependency. It runs on every ``dvc repro`` (``always_changed``) and imports no torch."""
from __future__ import annotations

import logging

from avs_core.config import Params
from avs_core.pipeline.manifest import dvcignore_hint, write_manifest
from stages._common import run_stage


def work(params: Params) -> None:
    log = logging.getLogger("stages.manifest")
    count = write_manifest(params.data.root, params.paths.manifest)
    log.info("%d files under %s", count, params.data.root)
    hint = dvcignore_hint(params.data.root, ".") if params.data.source == "avsbench" else None  # synthetic: a DVC output
    if hint:
        log.warning("%s", hint)


def main(argv: list[str] | None = None) -> int:
    return run_stage("manifest", work, argv, uses_torch=False)


if __name__ == "__main__":
    raise SystemExit(main())
