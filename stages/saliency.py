"""Stage ``saliency``: salient-object net on C2AM cues and WS-AVS Eq. 6 masks (``data/pseudo/saliency``)."""
from __future__ import annotations

from pathlib import Path

from avs_core import learning
from avs_core.config import Params
from avs_core.engine.distributed import init_distributed
from avs_core.pipeline import saliency
from avs_core.quality import write_quality
from stages._common import main_only_dir, run_stage

OUT = Path("data/pseudo/saliency")


def work(params: Params) -> None:
    dist = init_distributed(params.compute)
    with main_only_dir(OUT, dist) as tmp:
        checks, curves = saliency.run(params.saliency, params.data.image_size, params.base.seed,
                                      Path("data/pseudo/c2am"), tmp, dist, params.compute.map_workers)
        if dist.is_main:  # inside the with: a stage that learned nothing keeps no maps (on_chance=error)
            learning.report("saliency", checks, params.base.on_chance, "reports/saliency/learning.json", curves)
    if not dist.is_main:
        return
    write_quality("saliency", OUT, [("saliency", "saliency", "prob"), ("eq6", "eq6", "prob")],
                  params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("saliency", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
