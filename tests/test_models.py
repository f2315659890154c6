import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avs_core.models.backbones import WeightsError, build_resnet
from avs_core.models.encoders import AudioEncoder, VisualEncoder


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_encoders_shapes(name):
    v = VisualEncoder(name, dim=16)
    maps = v(torch.randn(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4), (2, 16, 2, 2)]
    torch.testing.assert_close(maps[0].norm(dim=1), torch.ones(2, 16, 16))
    a = AudioEncoder(name, dim=16)(torch.randn(2, 1, 257, 66))
    assert a.shape == (2, 16) and torch.allclose(a.norm(dim=1), torch.ones(2))


TORCHVISION = json.loads((Path(__file__).parent / "fixtures" / "torchvision_resnets.json").read_text())


def _stats(t: torch.Tensor) -> list[float]:
    t = t.detach().double()
    return [t.sum().item(), t.abs().sum().item()]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnet_is_torchvisions_weight_for_weight_and_output_for_output(name):
    """``models/resnet.py`` rebuilds torchvision's ResNets (torchvision is not installed), checked
    against what ``fixtures/make_torchvision_resnets.py`` recorded of them: the same keys and shapes
    in the same order (so torchvision checkpoints load), the same initial weights from the same seed
    and the same random draws, the same outputs."""
    from avs_core.models.backbones import IMAGENET_URLS
    from avs_core.models.resnet import ResNet

    theirs = TORCHVISION["nets"][name]
    assert IMAGENET_URLS[name] == theirs["url"]
    torch.manual_seed(3)
    ours = ResNet(name)
    assert torch.rand(1).item() == theirs["after_init"]  # the same random draws, no more, no fewer
    ours_state = [[k, list(v.shape), *_stats(v)] for k, v in ours.state_dict().items()]
    assert [r[:2] for r in ours_state] == [r[:2] for r in theirs["state"]]
    np.testing.assert_allclose([r[2:] for r in ours_state], [r[2:] for r in theirs["state"]], rtol=1e-9, atol=1e-9)
    torch.manual_seed(4)
    x = torch.randn(2, 3, 64, 64)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        with torch.no_grad():
            # the signed sum cancels, so its rounding error scales with the absolute sum; float32 kernels
            # round differently by CPU (resnet50's sum moved by 1.9e-5 relative on an AVX2 machine)
            np.testing.assert_allclose(_stats(ours(x)), theirs["outputs"][mode], rtol=1e-5,
                                       atol=1e-5 * theirs["outputs"][mode][1])


def test_imagenet_offline_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: a download is needed

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", offline)
    with pytest.raises(WeightsError, match="local checkpoint path"):
        build_resnet("resnet18", "imagenet")


def test_local_state_dict_loads_and_reports_bad_keys(tmp_path, caplog):
    src = build_resnet("resnet18", "none")
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("layer4")}
    state["extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    net = build_resnet("resnet18", str(tmp_path / "w.pth"))
    torch.testing.assert_close(net.conv1.weight, src.conv1.weight)
    assert "unexpected key(s)" in caplog.text and "extra.weight" in caplog.text
    assert "missing key(s)" in caplog.text and "layer4" in caplog.text
    audio = build_resnet("resnet18", str(tmp_path / "w.pth"), in_channels=1)
    torch.testing.assert_close(audio.conv1.weight, src.conv1.weight.mean(1, keepdim=True))


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="cannot load"):
        build_resnet("resnet18", str(tmp_path / "evil.pt"))


def test_unrelated_checkpoint_is_refused(tmp_path):
    torch.save({"foo": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(WeightsError, match="no key matches"):
        build_resnet("resnet18", str(tmp_path / "x.pt"))
    with pytest.raises(WeightsError, match="does not exist"):
        build_resnet("resnet18", str(tmp_path / "absent.pt"))


def test_audio_frequency_pooling_averages_adjacent_bins():
    """``freq_pool=k`` sees the spectrogram with k adjacent bins averaged: a spectrogram whose bin
    pairs are swapped within each pair gives the same embedding; one-bin detail is gone."""
    torch.manual_seed(0)
    a = AudioEncoder("resnet18", dim=16, freq_pool=2).eval()
    spec = torch.randn(2, 1, 256, 66)
    swapped = spec.view(2, 1, 128, 2, 66).flip(3).reshape(2, 1, 256, 66)
    torch.testing.assert_close(a(spec), a(swapped))
    full = AudioEncoder("resnet18", dim=16).eval()
    assert not torch.allclose(full(spec), full(swapped))
    assert a(torch.randn(2, 1, 257, 66)).shape == (2, 16)  # an odd bin count: the last bin is dropped


def test_c2am_frozen_backbone_and_centred_features():
    """``freeze_backbone`` trains the head alone and keeps the backbone's BatchNorm statistics;
    ``centre_features`` leaves nothing for the head to split in frames that are all alike (what
    each location has in every frame, the padding's position code, is subtracted), in training
    and, through the running mean, in eval."""
    from avs_core.models.heads import C2AMNet

    torch.manual_seed(0)
    net = build_resnet("resnet18", "none")
    model = C2AMNet(net, "resnet18", grid=4, stages=(1, 2), frozen=True, centre=True)
    assert not any(q.requires_grad for q in net.parameters()) and not net.training
    assert all(q.requires_grad for q in (*model.head.parameters(), *model.bn.parameters()))
    stats = net.bn1.running_mean.clone()
    frame = torch.randn(1, 3, 32, 32)
    model.train()
    assert not net.training and model.head.training
    prob, feats = model(frame.repeat(4, 1, 1, 1))  # [4, 1, 4, 4], [4, C, 4, 4]
    assert torch.equal(net.bn1.running_mean, stats)
    assert feats.abs().max() < 1e-5 and prob.std() < 1e-5  # identical frames: no split at all
    model.eval()
    prob, _ = model(frame)
    assert prob.std() < 1e-4  # the running mean is that frame's features

    plain = C2AMNet(build_resnet("resnet18", "none"), "resnet18", grid=4, stages=(1, 2))
    plain.eval()
    assert plain(frame)[0].std() > 1e-3  # uncentred, the same frame's map is not flat


def test_c2am_input_scale_upsamples_the_frames_before_the_backbone():
    """``input_scale`` k: the map and features are k times finer, and are the backbone's features of
    the frame upsampled k times."""
    from avs_core.models.heads import C2AMNet

    torch.manual_seed(0)
    model = C2AMNet(build_resnet("resnet18", "none"), "resnet18", grid=8, stages=(1, 2), frozen=True, centre=True,
                    input_scale=2).eval()
    frame = torch.randn(2, 3, 32, 32)
    prob, feats = model(frame)
    assert prob.shape == (2, 1, 8, 8) and feats.shape == (2, 64 + 128, 8, 8)
    big = torch.nn.functional.interpolate(frame, scale_factor=2, mode="bilinear", align_corners=False)
    model.input_scale = 1
    torch.testing.assert_close(model.features(big), feats, rtol=0, atol=1e-6)


def test_c2am_frozen_features_cached_or_per_batch_are_the_backbones_features():
    """The cached features of a frozen backbone (frames and their mirror images, computed once) are
    what the backbone gives each batch, mirrored where asked; ``from_features`` gives the same map."""
    from avs_core.engine.distributed import SINGLE
    from avs_core.models.encoders import normalize_images
    from avs_core.models.heads import C2AMNet
    from avs_core.pipeline.c2am import FrozenFeatures

    torch.manual_seed(0)
    model = C2AMNet(build_resnet("resnet18", "none"), "resnet18", grid=4, stages=(1, 3), frozen=True, centre=True)
    frames = np.random.default_rng(0).integers(0, 256, (10, 3, 32, 32), dtype=np.uint8)
    cached, per_batch = FrozenFeatures(model, frames, SINGLE), FrozenFeatures(model, frames, SINGLE, cache_bytes=0)
    assert cached.cache is not None and per_batch.cache is None
    idx, flips = np.array([1, 4, 7]), torch.tensor([True, False, True])
    feats = cached(idx, flips)  # [3, C, 4, 4]
    assert feats.shape == (3, 64 + 256, 4, 4)  # stage 1 pooled, stage 3 upsampled to stride 8
    torch.testing.assert_close(feats, per_batch(idx, flips), rtol=0, atol=1e-5)
    chosen = torch.from_numpy(frames[idx])
    images = normalize_images(torch.where(flips.view(-1, 1, 1, 1), chosen.flip(-1), chosen))
    with torch.no_grad():
        torch.testing.assert_close(feats, model.features(images), rtol=0, atol=1e-5)
        assert (feats[0] - cached(idx[:1], torch.tensor([False]))[0]).abs().max() > 1e-3  # the mirror is used
        torch.testing.assert_close(model(feats, from_features=True)[0], model(images)[0])


def test_c2am_positional_share_tells_a_split_by_position_from_a_map_of_the_frame(tmp_path):
    """The ``c2am`` learning check: 1 when every frame gets the same map (top vs bottom, whatever
    the frame shows), near 0 when the maps follow the frames."""
    from avs_core.pipeline.c2am import positional_share
    from avs_core.store import create_h5, write_strings

    rng = np.random.default_rng(0)
    top = np.zeros((7, 5, 16, 16), np.float32)
    top[..., :8, :] = 1.0
    objects = np.zeros_like(top)
    for v, t in np.ndindex(7, 5):  # a square somewhere in each frame
        y, x = rng.integers(0, 12, 2)
        objects[v, t, y:y + 4, x:x + 4] = 1.0
    for name, maps in (("top", top), ("objects", objects)):
        with create_h5(tmp_path / f"{name}.h5", stage="c2am") as f:
            write_strings(f, "ids", [f"v{i}" for i in range(7)])
            f["c2am"] = maps
    assert positional_share(tmp_path / "top.h5") > 0.99
    assert positional_share(tmp_path / "objects.h5") < 0.1
