import numpy as np
import pytest
import torch

from avs_core.config import AlignmentParams, SegParams
from avs_core.data.splits import SplitArrays
from avs_core.models.segmentation import TPAVI, AVSegmenter, tpavi_dense
from avs_core.models.unet import AudioUNet
from avs_core.pipeline.train_seg import InputMaps, SegData, apply_crops, build_model, random_crops, train, training_units
from avs_core.store import StoreError, write_strings
from avs_core.supervision import Targets
from tests.helpers import one_torch_thread


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
    maps = None if p.map_input == "none" else np.random.default_rng(3).random((len(split), 5, 64, 64)).astype(np.float32)
    return SegData(split, p, audio, maps)


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


def test_random_crops_stay_inside_the_frame_and_move_image_and_target_together():
    theta = random_crops(64, 0.5, torch.Generator().manual_seed(0))
    side, shift = theta[:, 0, 0], theta[:, :, 2]
    assert (side >= 0.5).all() and (side <= 1).all() and torch.equal(theta[:, 1, 1], side)
    assert ((shift.abs() + side[:, None]) <= 1 + 1e-6).all()  # no border padding is ever sampled
    assert torch.equal(apply_crops(torch.ones(1, 1, 8, 8), random_crops(1, 1.0, torch.Generator())), torch.ones(1, 1, 8, 8))
    # the top-left quadrant, zoomed: a square there fills the frame, in the image and in its target alike
    square = torch.zeros(2, 1, 16, 16)
    square[..., :8, :8] = 1
    quadrant = torch.tensor([[[0.5, 0.0, -0.5], [0.0, 0.5, -0.5]]]).repeat(2, 1, 1)
    out = apply_crops(square, quadrant)
    assert (out[..., :14, :14] == 1).all() and (out[..., -1, -1] < 1).all()


def test_input_map_is_a_fourth_channel_flipped_with_the_frame():
    p = SegParams(width=8, image_size=32, map_input="pamr")
    split = _split(2)
    coarse = np.zeros((2, 5, 64, 64), np.float32)
    coarse[..., :32] = 1  # left half
    data = SegData(split, p, np.zeros((2, 5, 16), np.float32), coarse)
    images, _ = data.inputs(np.array([0, 1]), np.array([0, 0]), torch.tensor([False, True]))
    assert images.shape == (2, 4, 32, 32)
    assert images[0, 3, :, 0].min() > images[0, 3, :, -1].max()  # kept: bright on the left
    assert images[1, 3, :, -1].min() > images[1, 3, :, 0].max()  # flipped with its frame
    assert build_model(p, AlignmentParams(dim=16), 5, None)(images, torch.zeros(2, 16))["logits"].shape == (2, 1, 32, 32)


def test_input_maps_read_the_chosen_dataset_of_pamrs_file(tmp_path):
    import h5py

    rng = np.random.default_rng(0)
    maps = {key: rng.random((3, 5, 8, 8)).astype(np.float32) for key in ("coarse", "pamr")}
    path = tmp_path / "val.h5"
    with h5py.File(path, "w") as fh:
        write_strings(fh, "ids", ["a", "b", "c"])
        for key, value in maps.items():
            fh[key] = value
    vids, ks = np.array([2, 0, 2]), np.array([4, 1, 0])
    for key, value in maps.items():
        np.testing.assert_array_equal(InputMaps(path, key)[vids, ks], value[vids, ks])
    with pytest.raises(StoreError, match="no dataset 'walk'"):
        InputMaps(path, "walk")


@pytest.mark.parametrize("model,crop_scale", [("unet", 1.0), ("unet", 0.6), ("avsbench", 0.6)])
def test_training_runs_for_every_supervision_and_keeps_best_validation(model, crop_scale):
    p = SegParams(model=model, width=16 if model == "avsbench" else 8, image_size=32, steps=4, val_every=2,
                  batch_size=2, lr=1e-3, crop_scale=crop_scale,
                  map_input="pamr" if model == "unet" and crop_scale < 1 else "none")
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


def test_a_model_does_not_depend_on_the_models_trained_before_it(learned_run, tmp_path, monkeypatch):
    """Each train_seg model starts from base.seed's draw: ``pseudo``, trained here after ``none``, is
    the same network as ``learned_run``'s, trained there alone, so single-seed comparisons between
    the supervisions differ only by their targets."""
    import shutil

    import h5py
    import yaml

    from stages import train_seg

    root = tmp_path / "run"
    shutil.copytree(learned_run, root, ignore=shutil.ignore_patterns("seg", "reports", "*.resume.pt"))
    params = yaml.safe_load((learned_run / "params.yaml").read_text())
    assert params["seg"]["supervision"] == "pseudo" and params["seg"]["baselines"] == []
    params["seg"].update(supervision="none", baselines=["pseudo"])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(root)
    with one_torch_thread():  # learned_run's thread count: the same floats
        assert train_seg.main(["--params", "params.yaml"]) == 0
    for split in ("val", "test"):
        with h5py.File(learned_run / "data/seg/pseudo" / f"{split}.h5") as alone, \
                h5py.File(root / "data/seg/pseudo" / f"{split}.h5") as second:
            assert np.array_equal(alone["prob"][:], second["prob"][:]), split


def test_only_the_full_bound_chooses_its_input_channel():
    from avs_core.pipeline.train_seg import map_input_choices

    assert map_input_choices(SegParams(map_input="pamr"), "pseudo") == ("pamr",)
    assert map_input_choices(SegParams(map_input="pamr"), "none") == ("pamr",)
    assert map_input_choices(SegParams(map_input="pamr", full_map_input="val"), "full") == ("pamr", "none")
    assert map_input_choices(SegParams(map_input="coarse", full_map_input="same"), "full") == ("coarse",)
    assert map_input_choices(SegParams(map_input="pamr", full_map_input="none"), "full") == ("none",)
    assert map_input_choices(SegParams(model="avsbench", map_input="none", full_map_input="val"), "full") == ("none",)


def test_the_full_bound_keeps_the_channel_that_validates_best(learned_run, tmp_path, monkeypatch):
    """``seg.full_map_input: val`` trains the full-supervision bound with PAMR's map and without it,
    keeps the one with the better validation mIoU, writes its predictions and says which it kept
    (the checkpoint, the prediction files' ``map_input``); both curves are in reports/train_seg."""
    import json
    import shutil

    import h5py
    import yaml

    from avs_core.engine.checkpoint import load
    from stages import train_seg

    root = tmp_path / "run"
    shutil.copytree(learned_run, root, ignore=shutil.ignore_patterns("seg", "reports", "*.resume.pt"))
    params = yaml.safe_load((learned_run / "params.yaml").read_text())
    params["seg"].update(supervision="full", baselines=[], map_input="pamr", full_map_input="val")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(root)
    with one_torch_thread():
        assert train_seg.main(["--params", "params.yaml"]) == 0
    kept = load(root / "models/seg/full.pt")
    scores = kept["val_miou_by_map_input"]
    assert set(scores) == {"pamr", "none"} and kept["map_input"] == max(scores, key=scores.get)
    assert kept["val_miou"] == scores[kept["map_input"]]
    with h5py.File(root / "data/seg/full/test.h5") as f:
        assert f.attrs["map_input"] == kept["map_input"]
    for curves in ("full", "full-none"):
        assert json.loads((root / "reports/train_seg" / curves / "metrics.json").read_text())["val_miou"] > 0


def test_validation_scores_predictions_as_evaluate_does(monkeypatch):
    """Model selection (``val_miou``) and the results table (``evaluate``: ``score_map_blocks`` with
    the ``prob`` rule) must threshold the same masks: resized to the ground truth first, then > 0.5.
    Resizing logits instead moves the boundary between a confident and a hesitant pixel (0.99 next
    to 0.3), which these predictions are made of."""
    from avs_core.maps import score_map_blocks
    from avs_core.pipeline import train_seg

    split = _split()
    split.annotated[:, 1:] = False  # frame 1 only, as AVSBench S4 annotates its train split
    probs = np.where(np.random.default_rng(0).random((4, 5, 8, 8)) < 0.4, 0.99, 0.3).astype(np.float32)
    monkeypatch.setattr(train_seg, "predict", lambda model, data, dist=None: iter([(0, probs[:3]), (3, probs[3:])]))
    masks = np.zeros((4, 5, 100, 100), np.uint8)
    masks[:, :, 20:70, 30:90] = 1
    expected = score_map_blocks([(probs[:, 0], masks[:, 0])], "prob")["miou"]
    assert 0 < expected < 1
    data = SegData(split, SegParams(map_input="none"), None, None)
    assert train_seg.val_miou(None, data, masks) == pytest.approx(expected, abs=1e-9)
