"""Stage logic for ``pamr``: fuse the coarse audio-visual map with objectness, then PAMR.

Fusions (``pamr.fusion``):

* ``av``: the min-max normalised coarse sounding map (USPL: PAMR(M_crs)), raised to ``pamr.power``.
* ``objectness``: the WS-AVS Eq. 6 mask; it ignores the audio, so with silent distractors it
  segments every object.
* ``av_gated``: the Eq. 6 object regions (connected components) that the audio picks: each region
  is scored by the mean normalised coarse map inside it, and the regions scoring at least
  ``gate_ratio`` x the best one are kept; where Eq. 6 finds nothing the coarse map is used.
* ``val``: ``av`` or ``av_gated``, whichever PAMR refines best on the validation split
  (:func:`choose`). With one source sounding (S4) the object maps add silent objects and gating
  loses; with several (MS3) the sources are most of the objects and gating can win
  (docs/BENCHMARKS.md, sessions 25-26).

The coarse map is ``align``'s fused map, or with ``pamr.coarse: val`` the mean of the ``align``
stages that PAMR refines best on validation (:func:`choose`, jointly with the fusion).

Outputs ``{split}.h5``, each [V, T, S, S] float32 in [0, 1]: ``coarse`` (that coarse map, min-max
normalised per frame: what ``seg.map_input: coarse`` and ``affinity.walk_on: coarse`` read), ``fused``
(the map fed to PAMR) and ``pamr`` (what ``seg.map_input: pamr`` reads).
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from avs_core.config import PAMRParams, PathsParams
from avs_core.data.records import SPLITS
from avs_core.engine.parallel import ordered_map, worker_pool
from avs_core.data.maps import frame_chunks, map_file, read_maps
from avs_core.maps import fuse_scales, minmax, score_map_blocks
from avs_core.refine.pamr import refine_frames
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
    if p.fusion == "av_gated":
        return np.stack([gate_regions(o, a, p.gate_ratio) for o, a in zip(eq6, av)])
    raise ValueError(f"pamr.fusion {p.fusion!r}: resolve 'val' with choose() before fusing")


def refine(frames: np.ndarray, fused: np.ndarray, p: PAMRParams) -> np.ndarray:
    """PAMR at ``p.size`` on ``[N, 3, S, S]`` uint8 frames and ``[N, S, S]`` maps -> ``[N, S, S]``."""
    return refine_frames(frames, fused, p.size, p.iters, p.dilations)


def _fuse_and_refine(item: tuple[np.ndarray, np.ndarray, np.ndarray, PAMRParams]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk: ``[n, T, 3, S, S]`` frames, ``[n, T, S, S]`` coarse maps and Eq. 6 masks ->
    (min-max normalised coarse map, fused map, refined map), each ``[n, T, S, S]`` float32."""
    frames, coarse, eq6, p = item
    n, t = frames.shape[:2]
    norm = minmax(torch.from_numpy(coarse.reshape(n * t, *coarse.shape[2:])))
    # min-max puts the 0.5 level, where PAMR's output is thresholded, at half the frame's range; the
    # power moves it up (2: 0.71), off the broad background response around the object
    av = (norm ** p.power).numpy()
    fused = fuse(av, eq6.reshape(n * t, *eq6.shape[2:]), p)
    refined = refine(frames.reshape(n * t, *frames.shape[2:]), fused, p)
    return tuple(m.reshape(n, t, *m.shape[1:]).astype(np.float32) for m in (norm.numpy(), fused, refined))


def read_coarse(align_file: Path, stages: tuple[int, ...] | None, start: int, stop: int, size: int) -> np.ndarray:
    """Coarse maps ``[n, T, size, size]`` of videos ``start:stop``: ``align``'s ``fused`` map (``stages``
    None), or the mean of the stored per-stage maps ``scale{s}`` of ``stages``, fused as ``align`` fuses."""
    if stages is None:
        return read_maps(align_file, "fused", start, stop)
    per_stage = [read_maps(align_file, f"scale{s}", start, stop) for s in stages]  # [n, T, h_s, w_s] each
    n, t = per_stage[0].shape[:2]
    fused = fuse_scales([torch.from_numpy(m.reshape(n * t, *m.shape[2:])) for m in per_stage], size)
    return fused.reshape(n, t, size, size).numpy()


def _chunks(paths: PathsParams, split: str, stages: tuple[int, ...] | None, p: PAMRParams):
    """The work items of :func:`_fuse_and_refine`, one per chunk of ``split``'s videos, in order."""
    align_file, eq6_file = paths["align"] / f"{split}.h5", paths["saliency"] / f"{split}.h5"
    for start, frames in frame_chunks(paths["prepared"], split):
        stop = start + len(frames)
        yield (frames, read_coarse(align_file, stages, start, stop, frames.shape[-1]),
               read_maps(eq6_file, "eq6", start, stop), p)


# the fusions pamr.fusion: val chooses between; objectness ignores the audio, so it is not a candidate
VAL_FUSIONS = ("av", "av_gated")


def choose(p: PAMRParams, paths: PathsParams, map_scales: tuple[int, ...], val_truth: tuple[np.ndarray, np.ndarray],
           workers: int = 1, pool=None) -> tuple[str, tuple[int, ...] | None, dict[str, float]]:
    """``pamr.fusion: val`` and / or ``pamr.coarse: val``: the fusion (:data:`VAL_FUSIONS`) and the
    subset of ``alignment.map_scales`` whose PAMR output scores best (official mIoU, > 0.5) on the
    *validation* split against ``val_truth`` (its masks ``[V, T, H0, W0]`` and annotated flags
    ``[V, T]``, read by the stage: model selection, as ``train_seg`` selects its checkpoint; no
    training-split mask is read). A param that is not ``val`` is held at its value (stages None =
    ``align``'s fused map). Ties keep the first candidate (``av``, fewest stages). Returns the
    fusion, the stages and every candidate's validation mIoU, keyed ``"av 1+2"``.

    Why the stages: a stage that did not align drags the mean map down (on ``flat``, stages 2-3
    retrieved the audio's object at or below chance and PAMR of stages 1-3 scored 0.28 on validation
    against 0.45 for stage 1 alone); and the map with the best mIoU before PAMR is not the best after
    it (on ``shapes`` stage 1 alone led before PAMR, 0.27 against 0.21, and trailed after, 0.65
    against 0.75): docs/BENCHMARKS.md, session 20. Why the fusion: see the module docstring."""
    masks, annotated = val_truth
    fusions = VAL_FUSIONS if p.fusion == "val" else (p.fusion,)
    subsets = ([s for n in range(1, len(map_scales) + 1) for s in itertools.combinations(map_scales, n)]
               if p.coarse == "val" else [None])

    def blocks(q: PAMRParams, subset):
        start = 0
        for _, _, refined in ordered_map(_fuse_and_refine, _chunks(paths, "val", subset, q), workers, pool):
            keep = annotated[start:start + len(refined)]
            yield refined[keep], masks[start:start + len(refined)][keep]
            start += len(refined)

    scores = {(f, s): score_map_blocks(blocks(replace(p, fusion=f), s), "prob")["miou"]
              for f in fusions for s in subsets}
    fusion, stages = max(scores, key=scores.get)
    return fusion, stages, {f"{f} {'+'.join(map(str, s)) if s else 'fused'}": v for (f, s), v in scores.items()}


def run(p: PAMRParams, paths: PathsParams, out_dir: Path, map_scales: tuple[int, ...], workers: int = 1,
        val_truth: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Fuse ``paths.align``'s coarse maps with ``paths.saliency``'s object maps and refine them;
    ``val_truth`` (the validation split's masks and annotated flags) is needed when ``pamr.fusion``
    or ``pamr.coarse`` is ``val``.

    Chunks of videos are refined on ``workers`` processes (``compute.map_workers``) and written in
    order: the output does not depend on ``workers``. Returns ``{"fusion", "coarse", "stages",
    "val_miou"}``: the fusion used, the coarse map used (``pamr.coarse``), its stages and, where a
    choice was made on validation, every candidate's score (keyed ``"av 1+2"``)."""
    with worker_pool(workers) as pool:  # one pool for every split
        fusion, stages, scores = (choose(p, paths, map_scales, val_truth, workers, pool) if "val" in (p.fusion, p.coarse)
                                  else (p.fusion, None, {}))
        used = replace(p, fusion=fusion)
        attrs = {**asdict(p), "fusion_used": fusion, "coarse_stages": list(stages or map_scales)}
        for split in SPLITS:
            with map_file(out_dir / f"{split}.h5", "pamr", split, attrs, paths["prepared"]) as out:
                results = ordered_map(_fuse_and_refine, _chunks(paths, split, stages, used), workers, pool)
                for coarse, fused, refined in progress(results, desc=f"pamr {split}"):
                    out.append("coarse", coarse)
                    out.append("fused", fused)
                    out.append("pamr", refined)
    return {"fusion": fusion, "coarse": p.coarse, "stages": list(stages or map_scales), "val_miou": scores}
