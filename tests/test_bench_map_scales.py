"""``bench map-scales`` scores each subset of stages as the coarse map ``align`` would write with it."""
import dataclasses

import numpy as np
import torch

from avs_core.maps import score_map_blocks
from avs_core.pipeline import align
from bench import map_scales
from tests.test_retrieval import P, masks_for
from tests.ddp_align_worker import split


def test_each_subset_of_scales_is_scored_as_the_fused_map_it_would_write():
    """The validation score of a subset equals the official mIoU of the ``fused`` map that
    :func:`align.coarse_maps` writes with exactly those stages (own and shuffled audio)."""
    torch.manual_seed(0)
    s = split(6, 3)
    s.annotated[::2, 3] = False  # only annotated frames are scored
    masks = masks_for(s, seed=1)
    model = align.AlignModel(P)
    scores = map_scales.subset_scores(model, s, masks, P, 32, "cpu", block_frames=20)
    assert set(scores) == {(1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)}
    order = align.shuffled_audio_order(len(s), s.labels, P.seed)
    for subset in ((2,), (1, 3)):
        p = dataclasses.replace(P, map_scales=subset)
        chunks = list(align.coarse_maps(model, s, p, 32, "cpu", (None, order)))
        for k in (0, 1):
            fused = np.concatenate([pairs[k][1] for _, pairs in chunks])  # [V, T, 32, 32]
            expected = score_map_blocks([(fused[s.annotated], masks[s.annotated])], "minmax")["miou"]
            assert abs(scores[subset][k] - expected) < 1e-6

