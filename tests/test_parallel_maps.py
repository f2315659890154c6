"""Map stages sharded over processes write the same bytes as one process."""
import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch

from avs_core.config import CRFParams, PAMRParams, PathsParams
from avs_core.data.splits import load_masks
from avs_core.engine.parallel import ordered_map
from avs_core.pipeline import crf, pamr
from avs_core.store import create_h5, write_strings


def _square(x):
    return x * x


def test_ordered_map_keeps_input_order_with_bounded_window():
    pulled = []

    def items():
        for i in range(20):
            pulled.append(i)
            yield i

    results = ordered_map(_square, items(), workers=2)
    assert next(results) == 0
    assert len(pulled) <= 5  # reads ahead by at most 2 x workers, not the whole input
    assert [0, *results] == [i * i for i in range(20)]


def _inputs(root, videos=20, size=32, objects=None):
    """Random frames and maps; stage 1's map is the ground truth plus noise, stages 2-3 are noise.
    ``objects(masks) -> [V, 5, S, S] uint8`` sets the Eq. 6 object masks (default: random pixels)."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        ids = [f"{split}{i}" for i in range(videos)]
        masks = np.zeros((videos, 5, size, size), np.uint8)
        for v, k in np.ndindex(videos, 5):
            top, left = rng.integers(0, size // 2, 2)
            masks[v, k, top:top + size // 2, left:left + size // 2] = 1
        with create_h5(root / f"data/prepared/{split}.h5", stage="prepare") as f:
            write_strings(f, "ids", ids)
            noise = rng.integers(0, 60, (videos, 5, 3, size, size))
            f["frames"] = (noise + 180 * masks[:, :, None]).astype(np.uint8)  # the object is the bright square
            f["masks"], f["annotated"] = masks, np.ones((videos, 5), bool)
        with create_h5(root / f"data/align/{split}.h5", stage="align") as f:
            write_strings(f, "ids", ids)
            f["fused"] = rng.uniform(-1, 1, (videos, 5, size, size)).astype(np.float32)
            f["scale1"] = (masks[..., ::4, ::4] + rng.normal(0, 0.3, (videos, 5, size // 4, size // 4))).astype(np.float32)
            f["scale2"] = rng.uniform(-3, 3, (videos, 5, size // 8, size // 8)).astype(np.float32)
            f["scale3"] = rng.uniform(-3, 3, (videos, 5, size // 16, size // 16)).astype(np.float32)
        with create_h5(root / f"data/saliency/{split}.h5", stage="saliency") as f:
            write_strings(f, "ids", ids)
            f["eq6"] = ((rng.random((videos, 5, size, size)) > 0.5) if objects is None else objects(masks)).astype(np.uint8)


def test_pamr_on_two_processes_writes_identical_maps(workdir):
    _inputs(workdir)
    p = PAMRParams(size=16, iters=3, fusion="av_gated", coarse="val")
    paths = dataclasses.replace(PathsParams(), saliency="data/saliency")  # relative to workdir, the cwd
    truth = load_masks("val", paths["prepared"])
    pamr.run(p, paths, workdir / "one", (1, 2, 3), workers=1, val_truth=truth)
    pamr.run(p, paths, workdir / "two", (1, 2, 3), workers=2, val_truth=truth)
    for split in ("train", "val", "test"):
        one, two = (workdir / "one" / f"{split}.h5").read_bytes(), (workdir / "two" / f"{split}.h5").read_bytes()
        assert one == two
        with h5py.File(workdir / "one" / f"{split}.h5") as f:
            assert f["pamr"].shape == (20, 5, 32, 32) and np.isfinite(f["pamr"][()]).all()


@pytest.mark.parametrize("objects, fusion", [
    (lambda masks: masks, "av_gated"),  # the object maps are the sounding objects: gating wins
    (lambda masks: 1 - masks, "av"),    # the object maps are the background: gating keeps it, and loses
])
def test_val_chooses_fusion_and_stages_on_validation(workdir, objects, fusion):
    _inputs(workdir, videos=8, objects=objects)
    p = PAMRParams(size=16, iters=3, fusion="val", coarse="val")
    paths = dataclasses.replace(PathsParams(), saliency="data/saliency")
    report = pamr.run(p, paths, workdir / "out", (1, 2, 3), val_truth=load_masks("val", paths["prepared"]))
    assert report["fusion"] == fusion
    assert len(report["val_miou"]) == 2 * 7  # both fusions x every non-empty subset of 3 stages
    assert report["val_miou"][f"{fusion} {'+'.join(map(str, report['stages']))}"] == max(report["val_miou"].values())
    with h5py.File(workdir / "out" / "test.h5") as f:
        recorded = json.loads(f.attrs["params_json"])
        assert recorded["fusion_used"] == fusion and recorded["fusion"] == "val"


def test_amp_and_channels_last_are_off_on_cpu():
    """``compute.amp`` / ``channels_last`` apply on GPU only: a CPU run stays bit-exact."""
    import torch

    from avs_core.config import ComputeParams
    from avs_core.engine.distributed import init_distributed

    info = init_distributed(ComputeParams(amp=True, channels_last=True))
    if torch.cuda.is_available():
        assert info.amp and info.channels_last
        return
    assert info.device.type == "cpu" and not info.amp and not info.channels_last
    model = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(2, 3, 8, 8)
    with info.autocast():
        y = info.prepare(model)(info.inputs(x))
    assert y.dtype == torch.float32 and x.is_contiguous() and torch.equal(y, model(x))


def test_crf_on_two_processes_writes_identical_masks(workdir):
    _inputs(workdir, videos=6, size=24)
    rng = np.random.default_rng(1)
    for split in ("train", "val", "test"):
        with create_h5(workdir / f"data/pseudo/affinity/{split}.h5", stage="affinity") as f:
            write_strings(f, "ids", [f"{split}{i}" for i in range(6)])
            f["walk"] = rng.random((6, 5, 24, 24)).astype(np.float32)
    p = CRFParams(iters=3)
    crf.run(p, PathsParams(), workdir / "one", workers=1)
    crf.run(p, PathsParams(), workdir / "two", workers=2)
    for split in ("train", "val", "test"):
        assert (workdir / "one" / f"{split}.h5").read_bytes() == (workdir / "two" / f"{split}.h5").read_bytes()
        with h5py.File(workdir / "one" / f"{split}.h5") as f:
            assert f["mask"].shape == (6, 5, 24, 24) and set(np.unique(f["mask"][()])) <= {0, 1}


def test_blockwise_split_reads_equal_reading_the_whole_split(workdir, monkeypatch):
    """saliency's cues, affinity's tri-map and train_seg's input maps read a few videos at a
    time (flat memory at AVSBench size); the values must be those of the whole split at once."""
    from avs_core.config import AffinityParams, SaliencyParams
    from avs_core.data.maps import read_maps, train_frames
    from avs_core.pipeline import affinity, saliency, train_seg
    from avs_core.refine.crf import crf_chunk, settings_from
    from avs_core.refine.trimap import trimap

    _inputs(workdir, videos=7, size=24)
    for stage, key in (("c2am", "c2am"), ("pamr", "pamr")):
        with create_h5(workdir / f"data/{stage}/train.h5", stage=stage) as f:
            write_strings(f, "ids", [f"train{i}" for i in range(7)])
            f[key] = np.random.default_rng(1).uniform(0, 1, (7, 5, 24, 24)).astype(np.float32)
            if stage == "pamr":
                f["coarse"] = np.random.default_rng(2).uniform(0, 1, (7, 5, 24, 24)).astype(np.float32)
    monkeypatch.setattr("avs_core.data.maps.CHUNK_VIDEOS", 3)  # map_chunks reads 3 + 3 + 1 videos
    frames = train_frames(workdir / "data/prepared")
    c2am = read_maps(workdir / "data/c2am/train.h5", "c2am").reshape(-1, 24, 24)
    s = SaliencyParams()
    whole = crf_chunk((*saliency.cue_inputs(frames, c2am, s), settings_from(s.cue_crf)))
    cues = saliency.saliency_cues(frames, workdir / "data/c2am/train.h5", s)
    assert cues.dtype == np.uint8 and np.array_equal(cues, whole) and 0 < cues.mean() < 1

    a = AffinityParams(size=8)
    pam = read_maps(workdir / "data/pamr/train.h5", "pamr").reshape(-1, 24, 24)
    whole_tri = trimap(affinity.to_grid(pam, a.size), a.beta_low, a.beta_high).numpy()
    assert np.array_equal(affinity.train_trimap(workdir / "data/pamr/train.h5", a), whole_tri)

    vids, ks = np.array([4, 0, 4, 6]), np.array([1, 3, 2, 0])
    for key in ("coarse", "pamr"):
        whole_maps = read_maps(workdir / "data/pamr/train.h5", key)
        assert np.array_equal(train_seg.InputMaps(workdir / "data/pamr/train.h5", key)[vids, ks], whole_maps[vids, ks])


def test_pamr_refines_the_stages_that_score_best_on_validation(workdir):
    _inputs(workdir)
    paths = dataclasses.replace(PathsParams(), saliency="data/saliency")
    chosen = pamr.run(PAMRParams(size=16, iters=3, fusion="av", coarse="val"), paths, workdir / "val", (1, 2, 3), val_truth=load_masks("val", paths["prepared"]))
    assert chosen["coarse"] == "val" and chosen["stages"] == [1]  # the only stage that carries the object
    assert set(chosen["val_miou"]) == {f"av {k}" for k in ("1", "2", "3", "1+2", "1+3", "2+3", "1+2+3")}
    assert chosen["val_miou"]["av 1"] > 2 * max(v for k, v in chosen["val_miou"].items() if "1" not in k)
    with h5py.File(workdir / "val/test.h5") as f, h5py.File(workdir / "data/align/test.h5") as a:
        assert json.loads(f.attrs["params_json"])["coarse_stages"] == [1]
        expected = pamr.read_coarse(workdir / "data/align/test.h5", (1,), 0, 20, 32)  # stage 1 alone, upsampled
        norm = pamr.minmax(torch.from_numpy(expected.reshape(100, 32, 32))).numpy().reshape(20, 5, 32, 32)
        np.testing.assert_array_equal(f["coarse"][()], norm)  # what seg.map_input=coarse reads: the chosen stages
        np.testing.assert_allclose(f["fused"][()], norm ** 2, rtol=0, atol=1e-6)
        assert not np.allclose(expected, a["fused"][()])
    fused = pamr.run(PAMRParams(size=16, iters=3, fusion="av", coarse="fused"), paths, workdir / "fused", (1, 2, 3))
    assert fused == {"fusion": "av", "coarse": "fused", "stages": [1, 2, 3], "val_miou": {}}  # no choice made
    with h5py.File(workdir / "fused/test.h5") as f, h5py.File(workdir / "data/align/test.h5") as a:
        norm = pamr.minmax(torch.from_numpy(a["fused"][()].reshape(100, 32, 32))).numpy().reshape(20, 5, 32, 32)
        np.testing.assert_array_equal(f["coarse"][()], norm)  # align's own fused map
        np.testing.assert_allclose(f["fused"][()], norm ** 2, rtol=0, atol=1e-6)
