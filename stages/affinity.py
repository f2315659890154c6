"""Stage ``affinity``: tri-map, affinity net and random walk (``paths.affinity``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.data.splits import load_masks
from avs_core.pipeline import affinity
from stages._common import run_stage
from stages._network_stage import run_network_stage


def work(params: Params) -> None:
    # validation ground truth: the walk's (beta, t) is a model selection (affinity.choose: val), as
    # pamr.fusion: val and train_seg's checkpoint are
    val_truth = load_masks("val", params.paths["prepared"]) if params.affinity.choose == "val" else None
    run_network_stage("affinity", params, lambda out, dist: affinity.run(
        params.affinity, params.data.image_size, params.base.seed, params.paths, out, dist, params.compute.map_workers,
        val_truth))


def main(argv: list[str] | None = None) -> int:
    return run_stage("affinity", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
