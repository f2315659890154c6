"""Stage ``manifest``: list the dataset folder's files, sizes and mtimes (``paths.manifest``).

A plain entry point without ``stages._common`` (which imports torch): this stage runs on every
``dvc repro`` and must start fast.
"""
from __future__ import annotations

import argparse
import logging
import sys

from avs_core.config import ParamError, load_params
from avs_core.pipeline.manifest import ManifestError, write_manifest
from avs_core.store import StoreError

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.manifest", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("stages.manifest")
    try:
        params = load_params(args.params)
        root = params.data.root
        log.info("%d files under %s", write_manifest(root, params.paths.manifest), root)
        return 0
    except (ParamError, ManifestError, StoreError, OSError) as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
