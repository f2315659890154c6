"""Stage logic for ``saliency``: a salient-object net trained on C^2AM cues, and WS-AVS Eq. 6.

Cues (CCAM pipeline): the C^2AM map, max-normalised per frame, above ``cue_threshold`` is
foreground; a label CRF cleans it (``unary_from_labels`` with gt_prob 0.7 on 2 labels equals the
probability unary of [0.3, 0.7]). The net learns these cues with BCE. Eq. 6 then takes
``argmax([1 - S; A])``: a pixel is foreground where the C^2AM activation A exceeds the saliency
background cue 1 - S (CCAM README: ``1 - sal`` is the background cue).

Outputs ``{split}.h5``: ``saliency`` [V, T, S, S] float32 in [0, 1], ``eq6`` [V, T, S, S] uint8.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import PathsParams, SaliencyParams, recorded
from avs_core.data.records import SPLITS
from avs_core.engine.distributed import SINGLE, DistInfo, broadcast_from_main
from avs_core.models.heads import SaliencyNet, build_backbone
from avs_core.learning import Check, loss_check
from avs_core.data.maps import map_chunks, map_file, read_maps, train_frames
from avs_core.engine.frames import fit, predict_maps
from avs_core.engine.parallel import ordered_map
from avs_core.refine.crf import crf_chunk, settings_from


def cue_inputs(frames: np.ndarray, c2am: np.ndarray, p: SaliencyParams) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 3, S, S]`` uint8 frames and ``[N, S, S]`` C^2AM maps -> the label CRF's inputs: images
    ``[N, S, S, 3]`` uint8 and the cue probability ``[N, S, S]`` float32 (0.7 / 0.3)."""
    norm = c2am / (c2am.reshape(len(c2am), -1).max(1)[:, None, None] + 1e-5)
    prob = np.where(norm > p.cue_threshold, 0.7, 0.3).astype(np.float32)
    return np.ascontiguousarray(frames.transpose(0, 2, 3, 1)), prob


def saliency_cues(frames: np.ndarray, c2am_train: Path, p: SaliencyParams, workers: int = 1) -> np.ndarray:
    """The cue of every train frame: ``[N, 3, S, S]`` uint8 frames (video-major, ``train_frames``)
    and the C^2AM map file of the train split -> ``[N, S, S]`` uint8 {0, 1}.

    ``CHUNK_VIDEOS`` videos at a time: the split's float32 maps and their copies are never held
    whole (they peaked at 7.0 GiB at AVSBench size and 128 px). Each frame's cue is its own CRF, so
    the result does not depend on the chunking.
    """
    settings = settings_from(p.cue_crf)

    def chunks():
        for start, c2am in map_chunks(c2am_train, "c2am"):  # [n, T, S, S]
            first = start * c2am.shape[1]
            c2am = c2am.reshape(-1, *c2am.shape[2:])
            yield (*cue_inputs(frames[first:first + len(c2am)], c2am, p), settings)

    cues = np.empty((len(frames), *frames.shape[2:]), np.uint8)
    done = 0
    for part in ordered_map(crf_chunk, chunks(), workers):
        cues[done:done + len(part)] = part
        done += len(part)
    return cues


def run(p: SaliencyParams, image_size: int, seed: int, paths: PathsParams, out_dir: Path | None,
        dist: DistInfo = SINGLE, workers: int = 1) -> tuple[list[Check], dict]:
    """Train (on every process under torchrun), then write the maps to ``out_dir`` (main process only).

    Returns the learning checks and the loss curve (main process; empty elsewhere)."""
    frames = train_frames(paths["prepared"])
    c2am_dir = paths["c2am"]
    cues = None
    if dist.is_main:  # the CRF runs once; the other processes receive its result
        cues = saliency_cues(frames, c2am_dir / "train.h5", p, workers)[:, None]  # [N, 1, S, S] uint8
    cues = broadcast_from_main(cues, dist)
    net, name = build_backbone(p.train.init, paths["align_model"])
    model = SaliencyNet(net, name)

    def loss_fn(m, images, target):
        return F.binary_cross_entropy_with_logits(m(images), target.float())

    history = fit(model, frames, cues, loss_fn, p.train, seed, "saliency", paths["checkpoints"], dist)
    if not dist.is_main:
        return [], {}
    model.eval()
    for split in SPLITS:
        with map_file(out_dir / f"{split}.h5", "saliency", split, recorded(p), paths["prepared"]) as out:
            for start, sal in predict_maps(lambda x, _v: torch.sigmoid(model(x)), paths["prepared"], split, image_size,
                                           dist):
                a = read_maps(c2am_dir / f"{split}.h5", "c2am", start, start + len(sal))
                out.add("saliency", start, sal)
                out.add("eq6", start, (a > 1 - sal).astype(np.uint8))
    prior = float(np.clip(np.count_nonzero(cues) / cues.size, 1e-6, 1 - 1e-6))  # predicting the cue prior everywhere
    entropy = -(prior * np.log(prior) + (1 - prior) * np.log(1 - prior))
    return [loss_check("saliency: train BCE, last epoch (chance: the cue prior)", history["epochs"][-1], entropy)], \
        {"saliency": {**history, "chance": entropy}}
