"""Stage ``crf``: dense CRF -> binary pseudo masks (``paths.crf``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.pipeline import crf
from avs_core.store import atomic_dir
from stages._common import run_stage


def work(params: Params) -> None:
    paths = params.paths
    with atomic_dir(paths["crf"]) as tmp:
        crf.run(params.crf, paths, tmp, params.compute.map_workers)
    # imported here: the scorer needs torch, and CRF workers, which re-import this module when
    # spawned, must start without it
    from avs_core.quality import write_quality

    write_quality("crf", paths, params.data.objects_file("train"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("crf", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
