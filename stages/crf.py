"""Stage ``crf``: dense CRF -> binary pseudo masks (``data/pseudo/crf``)."""
from __future__ import annotations

from pathlib import Path

from avs_core.config import Params
from avs_core.pipeline import crf
from avs_core.quality import write_quality
from avs_core.store import atomic_dir
from stages._common import run_stage

OUT = Path("data/pseudo/crf")


def work(params: Params) -> None:
    with atomic_dir(OUT) as tmp:
        crf.run(params.crf, Path("data/pseudo/affinity"), tmp, params.compute.map_workers)
    write_quality("crf", OUT, [("crf", "mask", "prob")], params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("crf", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
