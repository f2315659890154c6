"""Stage ``saliency``: salient-object net on C2AM cues and WS-AVS Eq. 6 masks (``paths.saliency``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.pipeline import saliency
from stages._common import run_stage
from stages._network_stage import run_network_stage


def work(params: Params) -> None:
    run_network_stage("saliency", params, lambda out, dist: saliency.run(
        params.saliency, params.data.image_size, params.base.seed, params.paths, out, dist, params.compute.map_workers))


def main(argv: list[str] | None = None) -> int:
    return run_stage("saliency", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
