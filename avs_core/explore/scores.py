"""Per-frame scores of every map a run holds, with the mask rule ``evaluate`` uses.

A *run* is a folder laid out like the project (``paths.prepared``, ``paths.align``, ...): the
workspace itself, or a revision materialised by :mod:`avs_core.explore.revisions`. The maps are
those of the registry :data:`avs_core.scored.OUTPUTS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import PathsParams
from avs_core.maps import prob_to_logits, resize_maps, to_probability
from avs_core.metrics import frame_iou
from avs_core.scored import OUTPUTS, Scored
from avs_core.store import StoreError, open_h5, read_strings

# every scored map, in pipeline order; the median variants are the same maps under another rule
STAGES: tuple[Scored, ...] = tuple(s for s in OUTPUTS if s.rule != "median")
# the refinement chain whose steps the "worst" view checks, in order
CHAIN = ("coarse_av", "pamr_input", "pamr", "random_walk", "crf", "seg_pseudo")
RULE_TEXT = {"minmax": "min-max normalised, > 0.5", "median": "top 50 % of pixels", "prob": "probability > 0.5"}


def prepared_file(paths: PathsParams, split: str) -> str:
    return (paths["prepared"] / f"{split}.h5").as_posix()


def run_files(split: str, paths: PathsParams) -> list[str]:
    """Every file of a run the explorer may read for ``split`` (relative to the run's root), the
    prepared split (frames and ground truth, always needed) first."""
    maps = sorted({m.file(paths, split).as_posix() for m in STAGES})
    return [prepared_file(paths, split)] + maps


@dataclass
class SplitInfo:
    """What the explorer needs of a prepared split besides the pixels.

    Attributes:
        ids: V video ids.
        categories: V category names ("" where the subset has none, MS3).
        annotated: ``[V, T]`` bool.
    """

    ids: list[str]
    categories: list[str]
    annotated: np.ndarray


def split_info(root: Path, split: str, paths: PathsParams) -> SplitInfo:
    with open_h5(root / prepared_file(paths, split)) as f:
        ids, labels, annotated = read_strings(f["ids"]), f["labels"][()], f["annotated"][()]
        names = [str(n) for n in f.attrs["category_names"]]
    return SplitInfo(ids, [names[c] if 0 <= c < len(names) else "" for c in labels], annotated)


def present_stages(root: Path, split: str, ids: list[str], paths: PathsParams) -> list[bool]:
    """Which of :data:`STAGES` the run holds for ``split`` (checked against its video list)."""
    out = []
    for m in STAGES:
        path = root / m.file(paths, split)
        if not path.is_file():
            out.append(False)
            continue
        with open_h5(path) as f:
            if m.key in f and read_strings(f["ids"]) != ids:
                raise StoreError(f"{path} lists other videos than {root / prepared_file(paths, split)}; "
                                 "re-run `dvc repro` for that run")
            out.append(m.key in f)
    return out


def read_block(root: Path, split: str, start: int, stop: int, paths: PathsParams) -> dict:
    """Frames and ground truth of videos ``[start, stop)``: ``frames`` [n, T, 3, S, S] uint8,
    ``masks`` [n, T, H0, W0] uint8, ``annotated`` [n, T] bool."""
    with open_h5(root / prepared_file(paths, split)) as f:
        return {"frames": f["frames"][start:stop], "masks": f["masks"][start:stop],
                "annotated": f["annotated"][start:stop]}


def read_stage(root: Path, m: Scored, split: str, start: int, stop: int, paths: PathsParams) -> np.ndarray:
    """``[n, T, h, w]`` maps of videos ``[start, stop)``."""
    with open_h5(root / m.file(paths, split)) as f:
        return f[m.key][start:stop]


def probabilities(maps: np.ndarray, rule: str, size: tuple[int, int]) -> torch.Tensor:
    """``[N, h, w]`` maps -> ``[N, H0, W0]`` probabilities whose ``> 0.5`` is evaluate's mask
    (resized bilinearly to the ground truth first, as ``evaluate`` does)."""
    return to_probability(resize_maps(torch.from_numpy(np.asarray(maps)).float(), size), rule)


def frame_scores(prob: torch.Tensor, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU of the mask ``prob > 0.5`` and of its complement, per frame (official AVSBench IoU).

    Args:
        prob: ``[N, H0, W0]`` from :func:`probabilities`.
        gt: ``[N, H0, W0]`` {0, 1}.
    Returns:
        ``(iou [N], inverted_iou [N])`` float32.
    """
    gt_t = torch.from_numpy(np.asarray(gt)).float()
    iou = frame_iou(prob_to_logits(prob), gt_t)
    inverted = frame_iou(prob_to_logits((prob <= 0.5).float()), gt_t)
    return iou.numpy(), inverted.numpy()


def display_bytes(prob: torch.Tensor, tile: int, levels: int = 32) -> np.ndarray:
    """``[N, H0, W0]`` probabilities -> ``[N, tile, tile]`` uint8 for the page: ``levels`` grey
    levels (bin centres; few levels compress several times better as PNG, and a heat map shows no
    more), placed so that ``> 0.5`` stays above 128 and ``<= 0.5`` below it: the page's threshold
    filter shows the rule's mask at that size."""
    small = F.interpolate(prob[:, None], size=(tile, tile), mode="area")[:, 0].numpy()
    step = 256 // levels
    q = np.floor(small * levels).clip(0, levels - 1) * step + step // 2
    q = np.where(small > 0.5, np.maximum(q, 128 + step // 2), np.minimum(q, 128 - step // 2))
    return q.astype(np.uint8)
