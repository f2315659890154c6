"""Stage logic for ``crf``: dense CRF on the random-walk maps -> binary pseudo masks.

Outputs ``{split}.h5``: ``mask`` [V, T, S, S] uint8 {0, 1}. The train split's masks supervise
``train_seg``; the others exist for evaluation and inspection.
"""
from __future__ import annotations

import collections
from dataclasses import asdict
from pathlib import Path

import numpy as np

from avs_core.config import CRFParams, PathsParams
from avs_core.data.records import SPLITS
from avs_core.data.maps import frame_chunks, map_file, read_maps
from avs_core.engine.parallel import ordered_map, worker_pool
from avs_core.refine.crf import crf_chunk, settings_from
from avs_core.runtime import progress


def run(p: CRFParams, paths: PathsParams, out_dir: Path, workers: int = 1) -> None:
    """Binary masks of ``paths.affinity``'s random-walk maps. Frames are processed on ``workers``
    processes (``compute.map_workers``); the output does not depend on it."""
    walk_dir = paths["affinity"]
    settings = settings_from(p)
    with worker_pool(workers) as pool:  # one pool for every split
        for split in SPLITS:
            shapes = collections.deque()  # (videos, frames) of each task in flight, in order

            def tasks(split=split):  # 4 videos (20 frames) per task: one pool serves the whole split
                for start, frames in frame_chunks(paths["prepared"], split, chunk=4):
                    n, t = frames.shape[:2]
                    shapes.append((n, t))
                    probs = read_maps(walk_dir / f"{split}.h5", "walk", start, start + n)
                    images = np.ascontiguousarray(frames.reshape(n * t, *frames.shape[2:]).transpose(0, 2, 3, 1))
                    yield images, probs.reshape(n * t, *probs.shape[2:]), settings

            with map_file(out_dir / f"{split}.h5", "crf", split, asdict(p), paths["prepared"]) as out:
                for masks in progress(ordered_map(crf_chunk, tasks(), workers, pool), desc=f"crf {split}"):
                    n, t = shapes.popleft()
                    out.append("mask", masks.reshape(n, t, *masks.shape[1:]))
