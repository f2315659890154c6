"""Does the ``align`` model find the sounding object, or remember the video?

For every annotated frame of each split and every map stage, each frame's audio retrieves, among
all annotated frames of the split, the best region by cosine similarity: either the sounding
object (its mask-pooled embedding) or the rest of the frame (pooled outside that mask). The
figure is the share of audio whose best region belongs to a video of the audio's category
(chance about 1/C).

A model that learned what each category looks like scores high on ``object`` on every split. A
model that remembered each training video by its background scores high on ``rest`` on the
training split and at chance elsewhere: the train-val gap of ``rest`` is the memorisation.

Reads the ground truth of every split, the training split's included, after training: this is an
evaluation of the stage's model, and nothing here reaches training.
"""
from __future__ import annotations

import numpy as np
import torch

from avs_core.config import load_params
from avs_core.data.splits import SplitArrays, load_masks, load_split
from avs_core.pipeline import align
from bench.map_scales import trained_align

SPLITS = ("train", "val", "test")


@torch.no_grad()
def region_retrieval(model: align.AlignModel, split: SplitArrays, masks: np.ndarray, annotated: np.ndarray,
                     image_size: int, scales: tuple[int, ...], block: int = 64) -> dict[int, dict[str, float]]:
    """``{stage: {"object": top-1 same category, "rest": top-1 same category}}`` over the annotated
    frames (``masks [V, T, H0, W0]`` {0, 1}, ``annotated [V, T]`` bool) of ``split``."""
    vids, frames = np.nonzero(annotated)  # [N] each
    audio = []  # [b, D] per block
    regions = {s: {"object": [], "rest": []} for s in scales}
    for i in range(0, len(vids), block):
        v, t = vids[i:i + block], frames[i:i + block]
        audio.append(model.audio.query(torch.from_numpy(split.audio[v, t])))
        maps = model.visual(align.augment(torch.from_numpy(split.frames[v, t]), image_size, None, False))
        mask = torch.from_numpy(masks[v, t]).float()  # [b, H0, W0]
        for s in scales:
            regions[s]["object"].append(align.region_embeddings(maps[s - 1], mask))
            regions[s]["rest"].append(align.region_embeddings(maps[s - 1], 1 - mask))
    labels, audio = split.labels[vids], torch.cat(audio)  # [N], [N, D]
    return {s: {kind: same_category_top1(audio, torch.cat(r), labels) for kind, r in regions[s].items()} for s in scales}


def same_category_top1(audio: torch.Tensor, regions: torch.Tensor, labels: np.ndarray) -> float:
    """``audio [N, D]`` and ``regions [N, D]`` (row i: frame i's) with ``labels [N]``: the share of
    audio whose most similar region (dot product) is from a frame of the same label."""
    return float(np.mean(labels[(audio @ regions.T).argmax(1).numpy()] == labels))


def run(params_path: str = "params.yaml") -> dict:
    params = load_params(params_path)
    p, paths = params.alignment, params.paths
    splits = {s: load_split(s, p.audio_window, paths["prepared"], paths["spectrograms"]) for s in SPLITS}
    if not splits["train"].has_categories:
        raise SystemExit("align-regions scores same-category retrieval: it needs the S4 layout's categories")
    model = trained_align(params)
    align.set_audio_centre(model, splits["train"], p.audio_centre, "cpu")  # as the stage scores it
    out = {"style": params.data.synthetic.style if params.data.source == "synthetic" else params.data.root,
           "chance": 1 / len(splits["train"].category_names), "splits": {}}
    for name, split in splits.items():
        masks, annotated = load_masks(name, paths["prepared"])
        out["splits"][name] = {str(s): r for s, r in region_retrieval(model, split, masks, annotated.astype(bool),
                                                                       p.image_size, tuple(p.scales)).items()}
    return out


def table(rows: list[dict]) -> list[str]:
    stages = sorted({s for r in rows for split in r["splits"].values() for s in split}, key=int)
    out = ["| data | split | chance | " + " | ".join(f"stage {s}: object / rest of frame" for s in stages) + " |",
           "|---|---|---|" + "---|" * len(stages)]
    for r in rows:
        for name, per_stage in r["splits"].items():
            out.append(f"| {r['style']} | {name} | {r['chance']:.3f} | " + " | ".join(
                f"{per_stage[s]['object']:.3f} / {per_stage[s]['rest']:.3f}" if s in per_stage else "-" for s in stages) + " |")
    return out
