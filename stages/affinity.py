"""Stage ``affinity``: tri-map, affinity net and random walk (``paths.affinity``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.pipeline import affinity
from stages._common import run_stage
from stages._network_stage import run_network_stage


def work(params: Params) -> None:
    run_network_stage("affinity", params, lambda out, dist: affinity.run(
        params.affinity, params.data.image_size, params.base.seed, params.paths, out, dist, params.compute.map_workers))


def main(argv: list[str] | None = None) -> int:
    return run_stage("affinity", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
