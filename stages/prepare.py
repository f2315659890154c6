"""Stage ``prepare``: validate the dataset and pack each split into HDF5 (``paths.prepared``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.pipeline.prepare import prepare
from avs_core.store import atomic_dir, atomic_write_json
from stages._common import run_stage

def work(params: Params) -> None:
    with atomic_dir(params.paths["prepared"]) as tmp:
        report = prepare(params.data, tmp)
    atomic_write_json(params.paths["reports"] / "prepare" / "report.json", report)


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
