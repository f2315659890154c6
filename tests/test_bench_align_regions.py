import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import AlignmentParams
from avs_core.data.splits import SplitArrays
from avs_core.pipeline import align
from bench.align_regions import region_retrieval, same_category_top1


def test_a_remembered_background_scores_on_its_own_videos_only():
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(3), 4)  # 12 frames, 3 categories
    category = F.normalize(torch.randn(3, 16, generator=g), dim=1)
    audio = category[labels]  # [12, D]: each clip sounds like its category
    objects = F.normalize(audio + 0.3 * torch.randn(12, 16, generator=g), dim=1)
    assert same_category_top1(audio, objects, labels) == 1.0
    # a background that the model tied to the category on training frames, to nothing elsewhere
    remembered = F.normalize(audio + 0.3 * torch.randn(12, 16, generator=g), dim=1)
    unseen = F.normalize(torch.randn(12, 16, generator=g), dim=1)
    assert same_category_top1(audio, remembered, labels) == 1.0
    assert same_category_top1(audio, unseen, labels) < 0.6


def test_region_retrieval_runs_on_a_tiny_split():
    torch.manual_seed(0)
    p = AlignmentParams(image_size=32, dim=8, scales=(1, 2), map_scales=(1, 2))
    model = align.AlignModel(p).eval()
    rng = np.random.default_rng(0)
    v, t = 6, 2
    split = SplitArrays([f"v{i}" for i in range(v)], np.arange(v) % 3, rng.integers(0, 255, (v, t, 3, 32, 32), np.uint8),
                        np.ones((v, t), bool), rng.normal(size=(v, t, 1, 257, 20)).astype(np.float32), ["a", "b", "c"])
    masks = np.zeros((v, t, 40, 40), np.uint8)
    masks[..., 8:24, 8:24] = 1
    annotated = np.zeros((v, t), bool)
    annotated[:, 0] = True  # S4's training split: frame 1 only
    out = region_retrieval(model, split, masks, annotated, p.image_size, p.scales, block=4)
    assert set(out) == {1, 2}
    assert all(0.0 <= r[k] <= 1.0 for r in out.values() for k in ("object", "rest"))
