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

from avs_core.config import load_params
from avs_core.data.splits import load_masks, load_split
from avs_core.engine.checkpoint import load
from avs_core.pipeline import align


def trained_align(params) -> align.AlignModel:
    """The project's ``align`` model (``paths.align_model``), encoders only, in eval mode on the CPU."""
    ckpt = load(params.paths["align_model"])
    model = align.AlignModel(params.alignment, 0)
    model.visual.load_state_dict(ckpt["visual"])
    model.audio.load_state_dict(ckpt["audio"])
    return model.eval()


def run(params_path: str = "params.yaml", splits=("val", "test")) -> dict:
    """``{split: {"1+2": (own mIoU, shuffled mIoU), ...}}`` for every non-empty subset of
    ``alignment.scales`` (the stage's :func:`align.scale_subset_scores` over every trained stage)."""
    params = load_params(params_path)
    p, paths = params.alignment, params.paths
    every = dataclasses.replace(p, map_scales=p.scales)
    model = trained_align(params)
    out = {}
    for name in splits:
        split = load_split(name, p.audio_window, paths["prepared"], paths["spectrograms"])
        masks, _ = load_masks(name, paths["prepared"])
        scores = align.scale_subset_scores(model, split, masks, every, params.data.image_size, "cpu")
        out[name] = {"+".join(map(str, k)): v for k, v in scores.items()}
    return out


def table(result: dict) -> list[str]:
    names = list(result)
    rows = ["| maps averaged | " + " | ".join(f"{n}: own / shuffled" for n in names) + " |",
            "|---|" + "---|" * len(names)]
    for subset in result[names[0]]:
        rows.append(f"| {subset} | " + " | ".join("{:.3f} / {:.3f}".format(*result[n][subset]) for n in names) + " |")
    return rows
