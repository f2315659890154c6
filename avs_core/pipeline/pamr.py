"""Stage logic for ``pamr``: fuse the coarse audio-visual map with objectness, then PAMR.

Fusions (``pamr.fusion``):

* ``av``: the min-max normalised coarse sounding map (USPL: PAMR(M_crs)), raised to ``pamr.power``.
* ``objectness``: the WS-AVS Eq. 6 mask; it ignores the audio, so with silent distractors it
  segments every object.
* ``av_gated``: the Eq. 6 object regions (connected components) that the audio picks: each region
  is scored by the mean normalised coarse map inside it, and the regions scoring at least
  ``gate_ratio`` x the best one are kept; where Eq. 6 finds nothing the coarse map is used.

Outputs ``{split}.h5``: ``fused`` [V, T, S, S] (the map fed to PAMR) and ``pamr`` [V, T, S, S], in [0, 1].
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import PAMRParams, PathsParams
from avs_core.data.records import SPLITS
from avs_core.engine.parallel import ordered_map, worker_pool
from avs_core.maps import minmax
from avs_core.data.maps import frame_chunks, map_file, read_maps
from avs_core.refine.pamr import pamr
from avs_core.runtime import progress


def gate_regions(objects: np.ndarray, av: np.ndarray, ratio: float) -> np.ndarray:
    """Keep the connected regions of a binary ``objects`` mask ``[H, W]`` that ``av`` ([0, 1]) scores highest."""
    n, comp = cv2.connectedComponents(objects.astype(np.uint8), connectivity=8)
    if n <= 1:
        return av.astype(np.float32)
    scores = np.array([av[comp == i].mean() for i in range(1, n)])
    keep = np.flatnonzero(scores >= ratio * scores.max()) + 1
    return np.isin(comp, keep).astype(np.float32)


def fuse(av: np.ndarray, eq6: np.ndarray, p: PAMRParams) -> np.ndarray:
    """``[N, S, S]`` normalised coarse maps and Eq. 6 masks -> the map PAMR refines."""
    if p.fusion == "av":
        return av
    if p.fusion == "objectness":
        return eq6.astype(np.float32)
    return np.stack([gate_regions(o, a, p.gate_ratio) for o, a in zip(eq6, av)])


def refine(frames: np.ndarray, fused: np.ndarray, p: PAMRParams) -> np.ndarray:
    """PAMR at ``p.size`` on ``[N, 3, S, S]`` uint8 frames and ``[N, S, S]`` maps -> ``[N, S, S]``."""
    size = frames.shape[-1]
    image = F.interpolate(torch.from_numpy(frames).float() / 255.0, size=(p.size, p.size), mode="bilinear",
                          align_corners=False)
    m = torch.from_numpy(fused).float()[:, None]
    m = F.interpolate(m, size=(p.size, p.size), mode="bilinear", align_corners=False)
    out = pamr(image, torch.cat([1 - m, m], dim=1), p.iters, tuple(p.dilations))[:, 1:]
    return F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()


def _fuse_and_refine(item: tuple[np.ndarray, np.ndarray, np.ndarray, PAMRParams]) -> tuple[np.ndarray, np.ndarray]:
    """One chunk: ``[n, T, 3, S, S]`` frames, ``[n, T, S, S]`` coarse maps and Eq. 6 masks -> (fused, refined)."""
    frames, coarse, eq6, p = item
    n, t = frames.shape[:2]
    # min-max puts the 0.5 level, where PAMR's output is thresholded, at half the frame's range; the
    # power moves it up (2: 0.71), off the broad background response around the object
    av = (minmax(torch.from_numpy(coarse.reshape(n * t, *coarse.shape[2:]))) ** p.power).numpy()
    fused = fuse(av, eq6.reshape(n * t, *eq6.shape[2:]), p)
    refined = refine(frames.reshape(n * t, *frames.shape[2:]), fused, p)
    return fused.reshape(n, t, *fused.shape[1:]).astype(np.float32), refined.reshape(n, t, *refined.shape[1:]).astype(np.float32)


def run(p: PAMRParams, paths: PathsParams, out_dir: Path, workers: int = 1) -> None:
    """Fuse ``paths.align``'s coarse maps with ``paths.saliency``'s object maps and refine them.

    Chunks of videos are refined on ``workers`` processes (``compute.map_workers``) and written in
    order: the output does not depend on ``workers``."""
    align_dir, saliency_dir = paths["align"], paths["saliency"]
    with worker_pool(workers) as pool:  # one pool for every split
        for split in SPLITS:
            def chunks(split=split):
                for start, frames in frame_chunks(paths["prepared"], split):
                    stop = start + len(frames)
                    yield (frames, read_maps(align_dir / f"{split}.h5", "fused", start, stop),
                           read_maps(saliency_dir / f"{split}.h5", "eq6", start, stop), p)

            with map_file(out_dir / f"{split}.h5", "pamr", split, asdict(p), paths["prepared"]) as out:
                results = ordered_map(_fuse_and_refine, chunks(), workers, pool)
                for fused, refined in progress(results, desc=f"pamr {split}"):
                    out.append("fused", fused)
                    out.append("pamr", refined)
