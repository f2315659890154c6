"""How the coarse map is handed to PAMR: ``pamr.power`` and ``pamr.iters``, from the trained
``align`` model of the project in the current directory (run ``dvc repro align`` first).

Each setting: the fused coarse map (``alignment.map_scales``, own audio), min-max normalised per
frame, raised to ``power``, refined by :func:`avs_core.pipeline.pamr.refine`; official mIoU of
PAMR's output (> 0.5) on the annotated frames of the train split (the frames whose pseudo masks
train the network; scored here only, never read by training) and of the test split.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from avs_core import metrics
from avs_core.config import load_params
from avs_core.data.splits import load_masks, load_split
from avs_core.maps import minmax, to_logits
from avs_core.pipeline import align
from avs_core.pipeline.pamr import refine
from bench.map_scales import trained_align

POWERS = (1.0, 1.5, 2.0, 2.5, 3.0)
ITERS = (10, 30)


def _annotated_maps(model, split, p, size: int) -> torch.Tensor:
    maps = np.concatenate([own for _, [(_, own)] in align.coarse_maps(model, split, p, size, "cpu")])  # [V, T, S, S]
    return torch.from_numpy(maps[split.annotated])  # [N, S, S]


def run(params_path: str = "params.yaml", splits=("train", "test"), powers=POWERS, iters=ITERS) -> dict:
    """``{"style": ..., "subset": ..., split: {"coarse": mIoU, "p{power}_i{iters}": PAMR mIoU}}``."""
    params = load_params(params_path)
    p, paths = params.alignment, params.paths
    model = trained_align(params)
    out = {"style": params.data.synthetic.style, "subset": params.data.subset}
    for name in splits:
        split = load_split(name, p.audio_window, paths["prepared"], paths["spectrograms"])
        masks, _ = load_masks(name, paths["prepared"])
        gt = torch.from_numpy(masks[split.annotated]).float()  # [N, H0, W0]
        frames = split.frames[split.annotated]  # [N, 3, S, S]
        fused = _annotated_maps(model, split, p, params.data.image_size)
        size = tuple(gt.shape[-2:])
        row = {"coarse": float(metrics.miou(to_logits(fused, size, "minmax"), gt))}
        for power, it in ((pw, it) for pw in powers for it in iters):
            refined = refine(frames, (minmax(fused) ** power).numpy(), dataclasses.replace(params.pamr, iters=it))
            row[f"p{power:g}_i{it}"] = float(metrics.miou(to_logits(refined, size, "prob"), gt))
        out[name] = row
    return out


def table(results: list[dict]) -> list[str]:
    keys = [k for k in results[0]["train"] if k != "coarse"]
    rows = ["| style / subset | split | coarse map (min-max) | " + " | ".join(
        f"PAMR, power {k.split('_')[0][1:]}, {k.split('_')[1][1:]} it" for k in keys) + " |",
        "|---|---|---|" + "---|" * len(keys)]
    for r in results:
        for split in ("train", "test"):
            if split in r:
                rows.append(f"| {r['style']} / {r['subset']} | {split} | {r[split]['coarse']:.3f} | "
                            + " | ".join(f"{r[split][k]:.3f}" for k in keys) + " |")
    return rows
