"""Which ResNet stages should the coarse map average? Every subset of ``alignment.scales``, scored
with the clip's own audio and with another category's audio (the shuffled control), from the
trained ``align`` model of the project in the current directory (run ``dvc repro align`` first).

Maps: the per-scale cosine maps of :func:`avs_core.pipeline.align.coarse_maps`, upsampled
bilinearly to ``data.image_size``, averaged; min-max rule; official mIoU on the annotated frames.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from avs_core import metrics
from avs_core.config import load_params
from avs_core.data.splits import load_masks, load_split
from avs_core.engine.checkpoint import load
from avs_core.maps import to_logits
from avs_core.pipeline import align


def _upsampled_scales(model, split, p, size: int, order) -> dict[int, torch.Tensor]:
    per = None
    for _, [(maps, _)] in align.coarse_maps(model, split, p, size, "cpu", (order,)):
        per = maps if per is None else [np.concatenate([a, b]) for a, b in zip(per, maps)]
    return {s: F.interpolate(torch.from_numpy(m[split.annotated])[:, None], size=(size, size), mode="bilinear",
                             align_corners=False)[:, 0] for s, m in zip(p.scales, per)}


def trained_align(params) -> align.AlignModel:
    """The project's ``align`` model (``paths.align_model``), encoders only, in eval mode on the CPU."""
    ckpt = load(params.paths["align_model"])
    model = align.AlignModel(params.alignment, 0)
    model.visual.load_state_dict(ckpt["visual"])
    model.audio.load_state_dict(ckpt["audio"])
    return model.eval()


def run(params_path: str = "params.yaml", splits=("val", "test")) -> dict:
    """``{split: {"1+2": (own mIoU, shuffled mIoU), ...}}`` for every non-empty subset of scales."""
    params = load_params(params_path)
    p, paths = params.alignment, params.paths
    model = trained_align(params)
    out = {}
    for name in splits:
        split = load_split(name, p.audio_window, paths["prepared"], paths["spectrograms"])
        masks, _ = load_masks(name, paths["prepared"])
        gt = torch.from_numpy(masks[split.annotated]).float()
        order = align.shuffled_audio_order(len(split), split.labels, p.seed)
        own = _upsampled_scales(model, split, p, params.data.image_size, None)
        other = _upsampled_scales(model, split, p, params.data.image_size, order)
        out[name] = {}
        for n in range(1, len(p.scales) + 1):
            for subset in itertools.combinations(p.scales, n):
                scores = []
                for maps in (own, other):
                    fused = torch.stack([maps[s] for s in subset]).mean(0)
                    scores.append(metrics.miou(to_logits(fused, tuple(gt.shape[-2:]), "minmax"), gt))
                out[name]["+".join(map(str, subset))] = tuple(scores)
    return out


def table(result: dict) -> list[str]:
    names = list(result)
    rows = ["| maps averaged | " + " | ".join(f"{n}: own / shuffled" for n in names) + " |",
            "|---|" + "---|" * len(names)]
    for subset in result[names[0]]:
        rows.append(f"| {subset} | " + " | ".join("{:.3f} / {:.3f}".format(*result[n][subset]) for n in names) + " |")
    return rows
