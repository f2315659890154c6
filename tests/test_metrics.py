"""The AVSBench metrics reproduce the official implementations' outputs (golden vectors)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from avs_core import metrics

GOLDEN = np.load(Path(__file__).parent / "fixtures" / "conformance_shared.npz")


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-7)


def test_per_frame_iou_matches_reference():
    close(metrics.frame_iou(GOLDEN["s4_logits"], GOLDEN["s4_gt"]), GOLDEN["s4_per_frame_iou"])


def test_empty_ground_truth_scores_fraction_of_negative_pixels():
    gt = np.zeros((1, 4, 4), np.float32)
    logits = np.full((1, 4, 4), -5.0, np.float32)
    logits[0, 0, :] = 5.0  # 4 of 16 pixels predicted positive
    assert metrics.frame_iou(logits, gt)[0] == pytest.approx(12 / 16)


def test_batch_values_and_official_aggregates():
    lg, gt = GOLDEN["s4_logits"], GOLDEN["s4_gt"]
    for b in range(3):
        sl = slice(20 * b, 20 * b + 20)
        close(metrics.miou(lg[sl], gt[sl]), GOLDEN["s4_batch_iou"][b])
        close(metrics.fscore(lg[sl], gt[sl], batch_frames=20), GOLDEN["s4_batch_fscore"][b])
    close(metrics.miou(lg, gt), GOLDEN["s4_miou_official"])
    close(metrics.fscore(lg, gt), GOLDEN["s4_fscore_official"])
    close(metrics.fscore(lg, gt, batch_frames=None), GOLDEN["s4_fscore_pooled"])


def test_fscore_depends_on_batching_and_counts_empty_batches_as_zero():
    lg, gt = GOLDEN["s4_logits"].copy(), GOLDEN["s4_gt"].copy()
    assert metrics.fscore(lg, gt, 20) != pytest.approx(metrics.fscore(lg, gt, 5))
    gt[:5] = 0  # first 5-frame batch has no object: it scores 0 and still counts
    per_batch = [metrics.fscore(lg[i:i + 5], gt[i:i + 5], None) for i in range(0, 60, 5)]
    assert per_batch[0] == 0.0
    assert metrics.fscore(lg, gt, 5) == pytest.approx(np.mean(per_batch))


def test_accepts_torch_and_channel_dim():
    lg = torch.from_numpy(GOLDEN["s4_logits"])[:, None]
    gt = torch.from_numpy(GOLDEN["s4_gt"])[:, None]
    close(metrics.miou(lg, gt), GOLDEN["s4_miou_official"])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must both be"):
        metrics.frame_iou(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))


def test_avss_scores_match_reference():
    miou, f, per_iou, per_f = metrics.avss_scores(GOLDEN["avss_logits"], GOLDEN["avss_target"])
    close(per_iou, GOLDEN["avss_miou_per_class"])
    close(per_f, GOLDEN["avss_f_per_class"])
    close(miou, GOLDEN["avss_miou"])
    close(f, GOLDEN["avss_fscore"])


def test_avss_padded_frame_adds_background_iou_one():
    logits = np.zeros((1, 71, 8, 8), np.float32)  # uniform scores -> argmax 0 (background)
    target = np.zeros((1, 8, 8), np.int64)
    miou, _, per_iou, _ = metrics.avss_scores(logits, target)
    assert per_iou[0] == pytest.approx(1.0)
    assert miou == pytest.approx(1 / 71)


def test_blockwise_scores_equal_one_pass():
    """Quality reports score in blocks (bounded memory); the numbers are those of one pass."""
    from avs_core.maps import score_map_blocks, to_logits

    rng = np.random.default_rng(0)
    maps = rng.random((100, 16, 16)).astype(np.float32)
    gt = (rng.random((100, 32, 32)) > 0.6).astype(np.float32)
    gt[[3, 27, 61]] = 0  # empty frames count as in the official code
    for rule in ("minmax", "prob", "median"):
        logits = to_logits(maps, (32, 32), rule)
        one = {"miou": metrics.miou(logits, gt), "fscore": metrics.fscore(logits, gt, 20),
               "fscore_pooled": metrics.fscore(logits, gt, None)}
        blocks = score_map_blocks(((maps[s:s + 40], gt[s:s + 40]) for s in range(0, 100, 40)), rule)
        for key in ("miou", "fscore", "fscore_pooled"):
            assert blocks[key] == pytest.approx(one[key], abs=1e-6), (rule, key)
        assert blocks["frames"] == 100
