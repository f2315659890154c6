"""Stage ``pamr``: fused coarse map refined by PAMR (``paths.pamr``)."""
from __future__ import annotations

import logging

from avs_core.config import Params
from avs_core.data.splits import load_masks
from avs_core.pipeline import pamr
from avs_core.quality import write_quality
from avs_core.store import atomic_dir, atomic_write_json
from stages._common import run_stage

log = logging.getLogger("stages.pamr")


def work(params: Params) -> None:
    paths = params.paths
    # validation ground truth: the fusion and the align stages PAMR refines are a model selection
    # (pamr.fusion / pamr.coarse: val), as train_seg's checkpoint is
    val_truth = load_masks("val", paths["prepared"]) if "val" in (params.pamr.fusion, params.pamr.coarse) else None
    with atomic_dir(paths["pamr"]) as tmp:
        coarse = pamr.run(params.pamr, paths, tmp, params.alignment.map_scales, params.compute.map_workers, val_truth)
    log.info("fusion %s, coarse map of stages %s (validation mIoU: %s)", coarse["fusion"], coarse["stages"],
             ", ".join(f"{k} {v:.4f}" for k, v in coarse["val_miou"].items()) or "no choice made")
    atomic_write_json(paths["reports"] / "pamr" / "coarse.json", coarse)
    write_quality("pamr", paths, params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("pamr", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
