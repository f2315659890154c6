"""Stage ``synthesize``: write the embedded synthetic dataset in the AVSBench layout.

With ``data.source=avsbench`` it generates nothing: its output folder holds only the note
``ABOUT.txt``, so the stage is a no-op that costs nothing to run or to hash. The note is written in
both cases: ``manifest`` depends on it rather than on the folder, which DVC would walk on every
``dvc repro`` only to order the two stages (tens of seconds at AVSBench size)."""
from __future__ import annotations

import logging

from avs_core.config import Params
from avs_core.pipeline.synthesize import generate
from avs_core.store import atomic_dir
from stages._common import run_stage


ABOUT = "ABOUT.txt"  # dvc.yaml: manifest's dependency ${paths.synthetic}/ABOUT.txt


def work(params: Params) -> None:
    with atomic_dir(params.paths["synthetic"]) as tmp:
        if params.data.source != "synthetic":
            (tmp / ABOUT).write_text(f"data.source={params.data.source}: the pipeline reads data.root; "
                                     "the embedded synthetic dataset was not generated.\n")
            logging.getLogger(__name__).info("data.source=%s: nothing to generate", params.data.source)
            return
        folder = generate(tmp, params.data.subset, params.data.synthetic)
        (tmp / ABOUT).write_text(f"The embedded synthetic dataset ({params.data.subset}, in the AVSBench layout under "
                                 f"{folder.name}/), written by stages.synthesize from data.synthetic: "
                                 f"{params.data.synthetic}\n")
        logging.getLogger(__name__).info("synthetic %s dataset written to %s/%s",
                                         params.data.subset, params.paths.synthetic, folder.name)


def main(argv: list[str] | None = None) -> int:
    return run_stage("synthesize", work, argv, uses_torch=False)  # numpy and OpenCV only


if __name__ == "__main__":
    raise SystemExit(main())
