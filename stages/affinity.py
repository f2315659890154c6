"""Stage ``affinity``: tri-map, affinity net and random walk (``data/pseudo/affinity``)."""
from __future__ import annotations

from pathlib import Path

from avs_core import learning
from avs_core.config import Params
from avs_core.engine.distributed import init_distributed
from avs_core.pipeline import affinity
from avs_core.quality import write_quality
from stages._common import main_only_dir, run_stage

OUT = Path("data/pseudo/affinity")


def work(params: Params) -> None:
    dist = init_distributed(params.compute)
    with main_only_dir(OUT, dist) as tmp:
        checks, curves = affinity.run(params.affinity, params.data.image_size, params.base.seed,
                                      Path("data/pseudo/pamr"), Path("data/align"), tmp, dist,
                                      params.compute.map_workers)
        if dist.is_main:  # inside the with: a stage that learned nothing keeps no maps (on_chance=error)
            learning.report("affinity", checks, params.base.on_chance, "reports/affinity/learning.json", curves)
    if not dist.is_main:
        return
    write_quality("affinity", OUT, [("walk", "walk", "prob")], params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("affinity", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
