"""Stage ``pamr``: fused coarse map refined by PAMR (``data/pseudo/pamr``)."""
from __future__ import annotations

from pathlib import Path

from avs_core.config import Params
from avs_core.pipeline import pamr
from avs_core.quality import write_quality
from avs_core.store import atomic_dir
from stages._common import run_stage

OUT = Path("data/pseudo/pamr")


def work(params: Params) -> None:
    with atomic_dir(OUT) as tmp:
        pamr.run(params.pamr, Path("data/align"), Path("data/pseudo/saliency"), tmp, params.compute.map_workers)
    write_quality("pamr", OUT, [("fused", "fused", "prob"), ("pamr", "pamr", "prob")],
                  params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("pamr", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
