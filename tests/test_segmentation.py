import numpy as np
import torch

from avs_core.config import SegParams
from avs_core.data.splits import SplitArrays
from avs_core.models.segmentation import TPAVI, AVSegmenter, tpavi_dense
from avs_core.segmentation import train
from avs_core.supervision import Targets


def test_tpavi_cheap_form_equals_materialised_attention():
    torch.manual_seed(0)
    m = TPAVI(16, 5).eval()
    torch.nn.init.normal_(m.w_z[1].weight)  # the zero init would hide the attention term
    x, a = torch.randn(10, 16, 6, 7), torch.randn(10, 16)
    torch.testing.assert_close(m(x, a), tpavi_dense(m, x, a), rtol=1e-5, atol=1e-5)


def test_segmenter_shapes_for_both_fusions():
    for fusion in ("tpavi", "coarse_map"):
        net = AVSegmenter("resnet18", dim=16, width=16, frames=5, fusion=fusion)
        out = net(torch.randn(10, 3, 64, 64), torch.randn(10, 1, 257, 20))
        assert out["logits"].shape == (10, 1, 64, 64) and out["audio"].shape == (10, 16)
        assert torch.isfinite(out["logits"]).all()


def _split(n=4, seed=0):
    r = np.random.default_rng(seed)
    return SplitArrays([f"v{i}" for i in range(n)], np.arange(n) % 2, r.integers(0, 255, (n, 5, 3, 64, 64), np.uint8),
                       np.ones((n, 5), bool), r.standard_normal((n, 5, 1, 257, 20)).astype(np.float32), ["a", "b"])


def test_training_runs_for_every_supervision_and_picks_best_epoch():
    p = SegParams(width=16, epochs=2, batch_size=2, lr=1e-3)
    tr, va = _split(), _split(seed=1)
    val_masks = np.zeros((4, 5, 64, 64), np.uint8)
    val_masks[:, :, 16:48, 16:48] = 1
    for mode, masks, w in (("pseudo", val_masks, np.ones((4, 5))), ("none", None, np.zeros((4, 5))),
                           ("full", val_masks, np.eye(1, 5).repeat(4, 0))):
        torch.manual_seed(0)
        net = AVSegmenter("resnet18", dim=16, width=16, frames=5)
        seen = []
        info = train(net, tr, Targets(mode, masks, w.astype(np.float32)), va, val_masks, p,
                     lambda e, m: seen.append(m))
        assert len(seen) == 2 and info["supervision"] == mode
        assert info["val_miou"] == max(m["val_miou"] for m in seen)
