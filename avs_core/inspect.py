"""``avs inspect`` (= ``python -m avs_core.inspect``): look at every intermediate map.

Two products, both read only the stages' HDF5 outputs (whatever exists):

* the **explorer** (``reports/inspect/explorer/index.html``): one static page, readable offline,
  over every split, video, frame and stage, with heat-map / mask overlays, ground-truth contours,
  a sortable and filterable video list, the frames where a refinement step lowered the IoU and the
  maps that prefer the background. ``--compare REV_A REV_B`` shows two git revisions or DVC
  experiments (``workspace`` = the files on disk) on the same frames.
* the static **PNG grid** (``reports/inspect/{split}.png``): frame 1 of the worst and best videos,
  every map captioned with its IoU; ``evaluate`` writes one per split for the README and
  ``dvc plots``.

Masks follow ``evaluate``'s rules (``avs_core.pipeline.evaluate.METHODS``).

Examples::

    avs inspect                                   # explorer of the workspace + train grid
    avs inspect --compare HEAD exp-1a2b3          # two runs side by side
    avs inspect --grid-only --split test --worst 4 --ids abc123
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from avs_core.config import ParamError, PathsParams, load_params
from avs_core.data.records import SPLITS
from avs_core.explore.grid import TILE, render
from avs_core.explore.page import write_explorer
from avs_core.explore.revisions import WORKSPACE, RevisionError, materialize
from avs_core.explore.scores import run_files
from avs_core.runtime import setup_logging



def explore(revs: list[str], splits: list[str], out_dir: Path, tile: int, paths: PathsParams,
            repo: Path = Path(".")) -> dict:
    """Write the explorer of ``revs`` (one or two; ``workspace`` = the files on disk) into ``out_dir``;
    every run is read as laid out by ``paths``."""
    with tempfile.TemporaryDirectory(prefix="avs-inspect-") as tmp:
        runs = []
        for i, rev in enumerate(revs):
            if rev == WORKSPACE:
                runs.append((rev, repo))
                continue
            files = [f for split in splits for f in run_files(split, paths)]
            prepared = {run_files(split, paths)[0] for split in splits}  # frames and ground truth: always needed
            runs.append((rev, materialize(rev, files, prepared, Path(tmp) / f"run{i}", repo)))
        return write_explorer(runs, splits, out_dir, paths, tile)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="avs inspect", description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", nargs=2, metavar=("REV_A", "REV_B"),
                    help="two git revisions or DVC experiment names (or 'workspace') shown side by side")
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS), help="explorer splits")
    ap.add_argument("--tile", type=int, default=TILE, help="explorer image size per map, pixels")
    ap.add_argument("--params", default="params.yaml", type=Path, help="where the outputs are (its paths section)")
    ap.add_argument("--out", type=Path, help="default: <paths.reports>/inspect")
    ap.add_argument("--grid-only", action="store_true", help="only the PNG grid")
    ap.add_argument("--split", choices=list(SPLITS), help="PNG grid split (default: train, or the first of --splits)")
    ap.add_argument("--ids", nargs="*", help="PNG grid: video ids (default: the worst and best by the last map)")
    ap.add_argument("--worst", type=int, default=4)
    ap.add_argument("--best", type=int, default=4)
    args = ap.parse_args(argv)
    setup_logging()
    try:
        paths = load_params(args.params).paths
    except ParamError as exc:
        print(f"avs inspect: {exc}", file=sys.stderr)
        return 2
    out = args.out or paths["reports"] / "inspect"
    if not 16 <= args.tile <= 512:
        ap.error("--tile must be between 16 and 512 pixels")
    if not args.compare:
        grid_split = args.split or ("train" if "train" in args.splits else args.splits[0])
        png = render(grid_split, args.ids, args.worst, args.best, out, paths)
        print(png, file=sys.stderr)
        if args.grid_only:
            return 0
    elif args.grid_only:
        ap.error("--grid-only shows the workspace; it does not take --compare")
    try:
        result = explore(args.compare or [WORKSPACE], args.splits, out / "explorer", args.tile, paths)
    except RevisionError as exc:
        print(f"avs inspect: {exc}", file=sys.stderr)
        return 2
    print(f"{result['index']}  ({result['files']} files, {result['bytes'] / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
