"""Stage ``pamr``: fused coarse map refined by PAMR (``paths.pamr``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.pipeline import pamr
from avs_core.quality import write_quality
from avs_core.store import atomic_dir
from stages._common import run_stage


def work(params: Params) -> None:
    paths = params.paths
    with atomic_dir(paths["pamr"]) as tmp:
        pamr.run(params.pamr, paths, tmp, params.compute.map_workers)
    write_quality("pamr", paths, params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("pamr", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
