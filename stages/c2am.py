"""Stage ``c2am``: C2AM class-agnostic maps and the CAM baseline (``paths.c2am``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.pipeline import c2am
from stages._common import run_stage
from stages._network_stage import run_network_stage


def work(params: Params) -> None:
    run_network_stage("c2am", params, lambda out, dist: c2am.run(params.c2am, params.data.image_size, params.base.seed,
                                                                 params.paths, out, dist))


def main(argv: list[str] | None = None) -> int:
    return run_stage("c2am", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
