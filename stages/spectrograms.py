"""Stage ``spectrograms``: audio features per split (``paths.spectrograms``)."""
from __future__ import annotations

from avs_core.config import Params
from avs_core.data.records import SPLITS
from avs_core.pipeline.spectrograms import extract_split
from avs_core.store import atomic_dir
from stages._common import run_stage


def work(params: Params) -> None:
    with atomic_dir(params.paths["spectrograms"]) as tmp:
        for split in SPLITS:
            extract_split(params.paths["prepared"] / f"{split}.h5", tmp / f"{split}.h5", params.audio)


def main(argv: list[str] | None = None) -> int:
    return run_stage("spectrograms", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
