"""What the pseudo-mask network stages (c2am, saliency, affinity) share around their logic: train
and write maps on the main process, report learning, score the maps (evaluation only)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from avs_core import learning
from avs_core.config import Params
from avs_core.engine.distributed import DistInfo, init_distributed
from avs_core.quality import write_quality
from stages._common import main_only_dir


def run_network_stage(name: str, params: Params, run: Callable[[Path | None, DistInfo], tuple[list, dict]]) -> None:
    """``run(out_dir, dist) -> (checks, curves)`` trains and writes the maps into ``out_dir`` (None
    off the main process); they land in ``paths.<name>`` and are scored into
    ``<reports>/<name>/quality.json``."""
    paths = params.paths
    dist = init_distributed(params.compute)
    with main_only_dir(paths[name], dist) as tmp:
        checks, curves = run(tmp, dist)
        if dist.is_main:  # inside the with: a stage that learned nothing keeps no maps (on_chance=error)
            learning.report(name, checks, params.base.on_chance, paths["reports"] / name / "learning.json", curves)
    if dist.is_main:
        write_quality(name, paths, params.data.objects_file("train"))
