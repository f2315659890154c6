"""Stage ``synthesize``: write the embedded synthetic dataset in the AVSBench layout.

With ``data.source=avsbench`` it generates nothing: its output folder holds one note, so the
stage is a no-op that costs nothing to run or to hash."""
from __future__ import annotations

import logging

from avs_core.config import Params
from avs_core.pipeline.synthesize import generate
from avs_core.store import atomic_dir
from stages._common import run_stage


PLACEHOLDER = "NOT_GENERATED.txt"


def work(params: Params) -> None:
    with atomic_dir(params.paths["synthetic"]) as tmp:
        if params.data.source != "synthetic":
            (tmp / PLACEHOLDER).write_text(f"data.source={params.data.source}: the pipeline reads data.root; "
                                           "the embedded synthetic dataset was not generated.\n")
            logging.getLogger(__name__).info("data.source=%s: nothing to generate", params.data.source)
            return
        folder = generate(tmp, params.data.subset, params.data.synthetic)
        logging.getLogger(__name__).info("synthetic %s dataset written to %s/%s",
                                         params.data.subset, params.paths.synthetic, folder.name)


def main(argv: list[str] | None = None) -> int:
    return run_stage("synthesize", work, argv, uses_torch=False)  # numpy and OpenCV only


if __name__ == "__main__":
    raise SystemExit(main())
