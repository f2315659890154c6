"""Which ResNet stages should the coarse map average? Every subset of ``alignment.scales``, scored
with the clip's own audio and with another category's audio (the shuffled control), from the
trained ``align`` model of the project in the current directory (run ``dvc repro align`` first).
With ``pamr.coarse: val`` the ``pamr`` stage chooses among the subsets of ``alignment.map_scales``
by their PAMR output on validation; this shows every subset's coarse map, before PAMR, on val and test.

Maps: the per-scale cosine maps of :func:`avs_core.pipeline.align.coarse_maps`, upsampled
bilinearly to ``data.image_size``, averaged; min-max rule; official mIoU on the annotated frames.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import torch

from avs_core.config import AlignmentParams, load_params
from avs_core.data.splits import SplitArrays, load_masks, load_split
from avs_core.maps import fuse_scales, score_map_blocks
from avs_core.engine.checkpoint import load
from avs_core.pipeline import align


def trained_align(params) -> align.AlignModel:
    """The project's ``align`` model (``paths.align_model``), encoders only, in eval mode on the CPU."""
    ckpt = load(params.paths["align_model"])
    model = align.AlignModel(params.alignment, 0)
    model.visual.load_state_dict(ckpt["visual"])
    model.audio.load_state_dict(ckpt["audio"])
    return model.eval()


def subset_scores(model: align.AlignModel, split: SplitArrays, masks: np.ndarray, p: AlignmentParams, out_size: int,
                  device, block_frames: int = 200) -> dict[tuple[int, ...], tuple[float, float]]:
    """Coarse-map mIoU of every non-empty subset of ``p.map_scales`` on the split's annotated frames,
    with the clip's own audio and with another category's audio (:func:`align.shuffled_audio_order`).

    Args:
        masks: ``[V, T, H0, W0]`` {0, 1} ground truth of ``split`` (validation: model selection only).

    Returns:
        ``{subset: (own mIoU, shuffled mIoU)}``, each subset's maps averaged as :func:`align.coarse_maps`
        fuses them (upsampled bilinearly to ``out_size``), min-max rule, official mIoU at the masks'
        native size. Memory: the native-resolution per-scale maps of the annotated frames only.
    """
    order = align.shuffled_audio_order(len(split), split.labels, p.seed)
    native: list[list[list[np.ndarray]]] = [[[] for _ in p.scales] for _ in range(2)]  # [own|shuffled][scale]
    for start, entries in align.coarse_maps(model, split, p, out_size, device, (None, order)):
        keep = split.annotated[start:start + len(entries[0][1])]  # [n, T]
        for k, (per_scale, _) in enumerate(entries):
            for i, m in enumerate(per_scale):
                native[k][i].append(m[keep])  # [n_annotated, h_s, w_s]
    gt = masks[split.annotated]  # [N, H0, W0]
    per = [[np.concatenate(chunks) for chunks in kind] for kind in native]
    out = {}
    for n in range(1, len(p.map_scales) + 1):
        for subset in itertools.combinations(p.map_scales, n):
            idx = [p.scales.index(s) for s in subset]
            scores = []
            for kind in per:
                blocks = ((fuse_scales([torch.from_numpy(kind[i][a:a + block_frames]) for i in idx], out_size).numpy(),
                           gt[a:a + block_frames]) for a in range(0, len(gt), block_frames))
                scores.append(score_map_blocks(blocks, "minmax")["miou"])
            out[subset] = (scores[0], scores[1])
    return out


def run(params_path: str = "params.yaml", splits=("val", "test")) -> dict:
    """``{split: {"1+2": (own mIoU, shuffled mIoU), ...}}`` for every non-empty subset of
    ``alignment.scales`` (:func:`subset_scores` over every trained stage)."""
    params = load_params(params_path)
    p, paths = params.alignment, params.paths
    every = dataclasses.replace(p, map_scales=p.scales)
    model = trained_align(params)
    out = {}
    for name in splits:
        split = load_split(name, p.audio_window, paths["prepared"], paths["spectrograms"])
        masks, _ = load_masks(name, paths["prepared"])
        scores = subset_scores(model, split, masks, every, params.data.image_size, "cpu")
        out[name] = {"+".join(map(str, k)): v for k, v in scores.items()}
    return out


def table(result: dict) -> list[str]:
    names = list(result)
    rows = ["| maps averaged | " + " | ".join(f"{n}: own / shuffled" for n in names) + " |",
            "|---|" + "---|" * len(names)]
    for subset in result[names[0]]:
        rows.append(f"| {subset} | " + " | ".join("{:.3f} / {:.3f}".format(*result[n][subset]) for n in names) + " |")
    return rows
