import numpy as np
import pytest
import torch

from avs_core.config import AlignmentParams, SegParams
from avs_core.data.splits import SplitArrays
from avs_core.models.segmentation import TPAVI, AVSegmenter, tpavi_dense
from avs_core.models.unet import AudioUNet
from avs_core.pipeline.train_seg import SegData, build_model, train, training_units
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


def _data(split, p):
    audio = None if p.model == "avsbench" else np.random.default_rng(2).standard_normal((len(split), 5, 16)).astype(np.float32)
    return SegData(split, p, audio)


def test_unet_shapes_and_film_starts_as_identity():
    net = AudioUNet(dim=16, base=8)
    x = torch.randn(3, 3, 32, 32)
    out = net(x, torch.randn(3, 16))
    assert out["logits"].shape == (3, 1, 32, 32) and out["features"].shape == (3, 64, 4, 4)
    net.eval()
    torch.testing.assert_close(net(x, torch.randn(3, 16))["logits"], net(x, torch.randn(3, 16))["logits"])


def test_units_skip_frames_without_a_target():
    w = np.zeros((3, 5), np.float32)
    w[:, 0] = 1
    assert training_units(Targets("full", None, w), temporal=False).tolist() == [[0, 0], [1, 0], [2, 0]]
    assert len(training_units(Targets("none", None, np.zeros((3, 5), np.float32)), temporal=False)) == 15
    assert training_units(Targets("full", None, w), temporal=True).tolist() == [0, 1, 2]


@pytest.mark.parametrize("model", ["unet", "avsbench"])
def test_training_runs_for_every_supervision_and_keeps_best_validation(model):
    p = SegParams(model=model, width=16 if model == "avsbench" else 8, image_size=32, steps=4, val_every=2,
                  batch_size=2, lr=1e-3)
    tr, va = _split(), _split(seed=1)
    val_masks = np.zeros((4, 5, 64, 64), np.uint8)
    val_masks[:, :, 16:48, 16:48] = 1
    for mode, masks, w in (("pseudo", val_masks, np.ones((4, 5))), ("none", None, np.zeros((4, 5))),
                           ("full", val_masks, np.eye(1, 5).repeat(4, 0))):
        torch.manual_seed(0)
        net = build_model(p, AlignmentParams(dim=16), 5, None) if model == "unet" else \
            AVSegmenter("resnet18", dim=16, width=16, frames=5)
        seen = []
        info = train(net, _data(tr, p), Targets(mode, masks, w.astype(np.float32)), _data(va, p), val_masks, p,
                     lambda step, m, state: seen.append(m))
        assert len(seen) == 2 and info["supervision"] == mode
        assert info["val_miou"] == max(m["val_miou"] for m in seen)
