"""The one place where training targets of ``train_seg`` come from.

* ``pseudo``: the CRF pseudo masks of the train split (no ground truth is opened); a frame whose
  mask is empty is not supervised.
* ``none``: no mask at all (AVS(ws) baseline: only the instance-level category and the
  audio-visual contrastive term).
* ``full``: the train split's ground truth where annotated (S4: frame 1 of each video) - the
  fully-supervised upper bound, never the weakly-supervised headline.

Ground truth of the training split is read here and only for ``full``; ``tests/test_supervision.py``
checks that the other modes never touch it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avs_core.store import open_h5, read_strings

log = logging.getLogger(__name__)

@dataclass
class Targets:
    """``masks [V, T, H, W]`` uint8 {0, 1} (None for ``none``) and ``weights [V, T]`` (1 = frame supervised)."""

    mode: str
    masks: np.ndarray | None
    weights: np.ndarray


def training_targets(mode: str, train_ids: list[str], frames: int, pseudo_path: Path, prepared_dir: Path,
                     min_frames: int = 1) -> Targets:
    """The targets of ``mode``: ``pseudo`` reads the CRF masks of the train split (``pseudo_path`` =
    ``paths.crf``/train.h5), ``full`` the ground truth in ``prepared_dir`` (``paths.prepared``)."""
    if mode == "pseudo":
        with open_h5(pseudo_path) as f:
            if read_strings(f["ids"]) != train_ids:
                raise ValueError(f"{pseudo_path} does not match the prepared train split; re-run `dvc repro`")
            masks = f["mask"][()]
        # every training clip has a sounding object (its weak label says which): an empty pseudo mask
        # is a refinement failure, not "nothing sounds", so the frame is left unsupervised rather than
        # taught background (as the 1-stage-wseg reference cancels the mask loss of an image whose
        # pseudo mask lacks a labelled class)
        supervised = masks.reshape(*masks.shape[:2], -1).any(axis=2)  # [V, T]
        if supervised.sum() < min_frames:  # too little left to learn from: train on them all, the checks say so
            log.warning("%d of the pseudo masks in %s have a foreground, fewer than one batch (%d): the refinement "
                        "found almost no sounding object (see reports/pamr, reports/affinity, reports/crf); the "
                        "network is trained on every mask, the empty ones included", supervised.sum(), pseudo_path,
                        min_frames)
            supervised[:] = True
        return Targets(mode, masks, supervised.astype(np.float32))
    if mode == "none":
        return Targets(mode, None, np.zeros((len(train_ids), frames), np.float32))
    if mode == "full":
        from avs_core.data.splits import load_masks  # ground truth: upper bound only

        masks, annotated = load_masks("train", prepared_dir)
        return Targets(mode, masks, annotated.astype(np.float32))
    raise ValueError(f"unknown supervision {mode!r}")
