"""Stage ``c2am``: C2AM class-agnostic maps and the CAM baseline (``data/pseudo/c2am``)."""
from __future__ import annotations

from pathlib import Path

from avs_core import learning
from avs_core.config import Params
from avs_core.engine.distributed import init_distributed
from avs_core.pipeline import c2am
from avs_core.quality import write_quality
from stages._common import main_only_dir, run_stage

OUT = Path("data/pseudo/c2am")


def work(params: Params) -> None:
    dist = init_distributed(params.compute)
    with main_only_dir(OUT, dist) as tmp:
        checks, curves = c2am.run(params.c2am, params.data.image_size, params.base.seed, tmp, dist)
        if dist.is_main:  # inside the with: a stage that learned nothing keeps no maps (on_chance=error)
            learning.report("c2am", checks, params.base.on_chance, "reports/c2am/learning.json", curves)
    if not dist.is_main:
        return
    entries = [("c2am", "c2am", "prob")]
    if params.data.subset == "s4":
        entries.append(("cam", "cam", "prob"))
    write_quality("c2am", OUT, entries, params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("c2am", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
