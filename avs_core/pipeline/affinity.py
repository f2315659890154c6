"""Stage logic for ``affinity``: USPL's sounding-map refinement (SMR).

1. Tri-map from the PAMR map on the affinity grid (Eq. 5: >= beta_high sounding, < beta_low silent).
2. An affinity net on multi-scale visual features, trained on the pair labels within ``radius``
   with the AffinityNet loss (Eq. 3, 6); A(i, j) = exp(-d(f_i, f_j)).
3. Random walk with T = D^-1 A^beta, t steps (Eq. 7, 8), on the sparse neighbourhood of the
   g x g grid (``affinity.choose: val``: the (beta, t) that scores best on the validation split),
   each walked map scaled back to its input's peak (``affinity.rescale: max``, IRN's
   ``rw / max(rw)``), back to the frame by ``affinity.upsample``: ``bilinear`` upsamples the walked map
   (USPL, IRN); ``residual`` adds the walk's change, upsampled, to the frame-resolution map it
   walked, so the edges PAMR drew finer than the grid survive (area-pooling the PAMR map to the
   32 grid and back alone cost it 0.03 test mIoU: docs/BENCHMARKS.md, session 19).

Outputs ``{split}.h5``: ``trimap`` [V, T, g, g] uint8 (255 = ignore), ``walk_grid`` [V, T, g, g]
(the walk on its grid) and ``walk`` [V, T, S, S] in [0, 1] (what the later stages read). The recorded params hold
``walk_used``: ``{"beta", "t", "val_miou"}``, the walk used and, under ``choose: val``, every
candidate's validation mIoU (keyed ``"beta=10 t=8"``).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import AffinityParams, PathsParams, recorded
from avs_core.data.records import SPLITS
from avs_core.engine.distributed import SINGLE, DistInfo
from avs_core.engine.parallel import ordered_map, worker_pool
from avs_core.losses.affinity import affinity_loss
from avs_core.models.encoders import normalize_images
from avs_core.models.heads import AffinityNet, build_backbone
from avs_core.learning import Check
from avs_core.maps import score_map_blocks
from avs_core.data.maps import frame_chunks, map_chunks, map_file, read_maps, train_frames
from avs_core.engine.frames import fit, learning_check, upsample
from avs_core.refine.random_walk import pair_distance, random_walk, rescale_to_peak
from avs_core.refine.trimap import affinity_labels, trimap
from avs_core.runtime import progress

log = logging.getLogger(__name__)
# choose_walk keeps the validation frames' affinity features below this size: AVSBench S4's 3,700
# validation frames hold 0.97 GB of them at the defaults (dim 64, grid 32)
VAL_FEATURES_BYTES = 2 << 30


def to_grid(maps: np.ndarray, size: int) -> torch.Tensor:
    """``[N, S, S]`` -> ``[N, size, size]`` (area averaging, like AffinityNet's pooled scores)."""
    return F.interpolate(torch.from_numpy(maps).float()[:, None], size=(size, size), mode="area")[:, 0]


def train_trimap(pamr_train: Path, p: AffinityParams) -> np.ndarray:
    """``[N, g, g]`` uint8: the tri-map of every train frame (video-major) on the affinity grid,
    from the PAMR maps read ``CHUNK_VIDEOS`` videos at a time (the split's float32 maps are never
    held whole: 3.2 GiB at AVSBench size and 224 px)."""
    parts = [trimap(to_grid(refined.reshape(-1, *refined.shape[2:]), p.size), p.beta_low, p.beta_high).numpy()
             for _, refined in map_chunks(pamr_train, "pamr")]  # [n, T, S, S] each
    return np.concatenate(parts)


def _walk_inputs(model: AffinityNet, p: AffinityParams, paths: PathsParams, split: str, image_size: int,
                 dist: DistInfo, features: list[torch.Tensor] | None = None):
    """``_walk``'s items over ``split``, a chunk of videos at a time: the maps to walk, the PAMR maps
    and the affinity features of the frames. ``features``, where given, memoises the features per
    chunk: a chunk it holds is not passed through the net again, one it lacks is appended."""
    key = "pamr" if p.walk_on == "pamr" else "coarse"  # coarse: the map pamr refined, min-max normalised
    pamr_file = paths["pamr"] / f"{split}.h5"
    for i, (start, chunk) in enumerate(frame_chunks(paths["prepared"], split)):
        n, t = chunk.shape[:2]
        maps = read_maps(pamr_file, key, start, start + n).reshape(n * t, image_size, image_size)
        pam = read_maps(pamr_file, "pamr", start, start + n).reshape(n * t, image_size, image_size)
        if features is not None and i < len(features):
            feats = features[i]
        else:
            flat = chunk.reshape(n * t, *chunk.shape[2:])
            with torch.no_grad():
                feats = model(dist.inputs(normalize_images(torch.from_numpy(flat))), p.size).float().cpu()
            if features is not None:
                features.append(feats)
        yield maps, pam, feats, n, image_size, p


def walk_candidates(p: AffinityParams) -> list[tuple[float, int]]:
    """``(beta, t)`` for ``choose: val``: the configured walk first (ties keep it), then
    ``val_betas`` x ``val_steps``; t = 0 leaves the map unchanged whatever beta, so it is one candidate."""
    pairs = [(p.beta, p.t)] + [(float(b), t) for b in p.val_betas for t in p.val_steps]
    return list(dict.fromkeys((p.beta, 0) if t == 0 else (b, t) for b, t in pairs))


def choose_walk(p: AffinityParams, model: AffinityNet, paths: PathsParams, image_size: int,
                val_truth: tuple[np.ndarray, np.ndarray], dist: DistInfo = SINGLE, workers: int = 1,
                pool=None) -> tuple[float, int, dict[str, float]]:
    """``affinity.choose: val``: the ``(beta, t)`` of :func:`walk_candidates` whose walk scores best
    (official mIoU, > 0.5) on the *validation* split against ``val_truth`` (its masks
    ``[V, T, H0, W0]`` and annotated flags ``[V, T]``, read by the stage: model selection, as
    ``pamr.fusion: val`` and ``train_seg``'s checkpoint are; no training-split mask is read).
    Returns beta, t and every candidate's validation mIoU, keyed ``"beta=10 t=8"``.

    Why: how far the walk should spread depends on the data. On ``shapes`` S4 the default
    (beta 10, t 8) took PAMR's 0.775 validation mIoU to 0.721 and a shorter, sharper walk (t 1-2, or
    beta 20) to 0.78 (docs/BENCHMARKS.md, session 29); on ``textured`` MS3 the walk gained at every
    step (session 26).

    The validation frames' affinity features are computed once for all candidates where they fit in
    ``VAL_FEATURES_BYTES`` (else once per candidate)."""
    masks, annotated = val_truth
    fits = masks.shape[0] * masks.shape[1] * p.dim * p.size ** 2 * 4 <= VAL_FEATURES_BYTES
    features = [] if fits else None

    def blocks(q: AffinityParams):
        start = 0
        inputs = _walk_inputs(model, q, paths, "val", image_size, dist, features)
        for _, _, walk in ordered_map(_walk, inputs, workers, pool):
            keep = annotated[start:start + len(walk)]
            yield walk[keep], masks[start:start + len(walk)][keep]
            start += len(walk)

    scores = {(b, t): score_map_blocks(blocks(replace(p, beta=b, t=t)), "prob")["miou"] for b, t in walk_candidates(p)}
    beta, t = max(scores, key=scores.get)
    return beta, t, {f"beta={b:g} t={t}": v for (b, t), v in scores.items()}


def run(p: AffinityParams, image_size: int, seed: int, paths: PathsParams, out_dir: Path | None,
        dist: DistInfo = SINGLE, workers: int = 1,
        val_truth: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[list[Check], dict]:
    """Train (on every process under torchrun), then walk and write to ``out_dir`` (main process only);
    returns the learning checks and the loss curve (main process; empty elsewhere). ``val_truth``
    (the validation split's masks and annotated flags) is needed when ``affinity.choose`` is ``val``.

    The walk of each chunk runs on ``workers`` processes (``compute.map_workers``), written in
    order: the output does not depend on ``workers``."""
    frames = train_frames(paths["prepared"])
    tri = train_trimap(paths["pamr"] / "train.h5", p)
    net, name = build_backbone(p.train.init, paths["align_model"])
    model = AffinityNet(net, name, p.dim)

    def loss_fn(m, images, target):
        bg, fg, neg, offsets = affinity_labels(target, p.radius)
        d, _, _ = pair_distance(m(images, p.size).float(), offsets, p.distance)
        return affinity_loss(torch.exp(-d).flatten(2), bg, fg, neg)

    history = fit(model, frames, tri, loss_fn, p.train, seed, "affinity", paths["checkpoints"], dist)
    if not dist.is_main:
        return [], {}
    model.eval()
    with worker_pool(workers) as pool:  # one pool for every split
        beta, t, scores = p.beta, p.t, {}
        if p.choose == "val":
            if val_truth is None:
                raise ValueError("affinity.choose: val needs the validation split's masks (val_truth)")
            beta, t, scores = choose_walk(p, model, paths, image_size, val_truth, dist, workers, pool)
            log.info("random walk: beta %g, t %d chosen on validation (mIoU: %s)", beta, t,
                     ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        used = replace(p, beta=beta, t=t)
        attrs = {**recorded(p), "walk_used": {"beta": beta, "t": t, "val_miou": scores}}
        for split in SPLITS:
            with map_file(out_dir / f"{split}.h5", "affinity", split, attrs, paths["prepared"]) as out:
                walks = ordered_map(_walk, _walk_inputs(model, used, paths, split, image_size, dist), workers, pool)
                for tri, walk_grid, walk in progress(walks, desc=f"random walk {split}"):
                    out.append("trimap", tri)
                    out.append("walk_grid", walk_grid)
                    out.append("walk", walk)
    return [learning_check("affinity", history)], {"affinity": history}


def _walk(item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk: maps to walk and PAMR maps ``[N, S, S]``, features ``[N, D, g, g]`` ->
    (tri-map ``[n, T, g, g]``, walk on the grid ``[n, T, g, g]``, walk ``[n, T, S, S]``)."""
    maps, pam, feats, n, image_size, p = item
    t = len(maps) // n
    grid = to_grid(maps, p.size)[:, None]  # [N, 1, g, g]
    with torch.no_grad():
        walked = random_walk(grid, feats, p.radius, p.beta, p.t, p.distance)  # [N, 1, g, g]
    if p.rescale == "max":
        walked = rescale_to_peak(walked, grid, p.max_growth)
    full = upsample(walked, image_size)  # [N, S, S]
    if p.upsample == "residual":
        full = torch.from_numpy(maps).float() + full - upsample(grid, image_size)
    tri = trimap(to_grid(pam, p.size), p.beta_low, p.beta_high).numpy().reshape(n, t, p.size, p.size)
    return (tri, walked[:, 0].numpy().reshape(n, t, p.size, p.size),
            full.clamp(0, 1).numpy().reshape(n, t, image_size, image_size))
