"""Refinement operators: PAMR and C2AM losses against golden vectors; random walk, tri-map, CRF."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avs_core.losses.affinity import affinity_loss
from avs_core.losses.c2am import c2am_negative_loss, c2am_positive_loss
from avs_core.refine.pamr import pamr
from avs_core.refine.random_walk import random_walk, random_walk_dense
from avs_core.refine.crf import CRFSettings, crf_batch
from avs_core.refine.random_walk import disk_offsets, half_disk_offsets
from avs_core.refine.trimap import affinity_labels, trimap

GOLDEN = np.load(Path(__file__).parent / "fixtures" / "conformance_shared.npz")


def test_pamr_matches_reference():
    out = pamr(torch.from_numpy(GOLDEN["pamr_image"]), torch.from_numpy(GOLDEN["pamr_mask"]),
               iters=10, dilations=(1, 2, 4, 8, 12, 24))
    assert out.shape == (2, 2, 40, 48)
    np.testing.assert_allclose(out.numpy(), GOLDEN["pamr_out"], rtol=1e-5, atol=1e-6)


def test_pamr_preserves_constant_masks_and_sums():
    img = torch.rand(1, 3, 16, 16)
    m = torch.rand(1, 2, 16, 16)
    m = m / m.sum(1, keepdim=True)
    out = pamr(img, m, iters=3, dilations=(1, 2))
    torch.testing.assert_close(out.sum(1), torch.ones(1, 16, 16))
    torch.testing.assert_close(pamr(img, torch.full((1, 1, 8, 8), 0.3), 2), torch.full((1, 1, 16, 16), 0.3))


def test_c2am_losses_match_reference():
    fg, bg = torch.from_numpy(GOLDEN["ccam_fg"]), torch.from_numpy(GOLDEN["ccam_bg"])
    np.testing.assert_allclose(c2am_negative_loss(bg, fg).item(), GOLDEN["ccam_neg_loss"], rtol=1e-5)
    np.testing.assert_allclose(c2am_positive_loss(bg, 0.25).item(), GOLDEN["ccam_pos_loss_bg"], rtol=1e-5)
    np.testing.assert_allclose(c2am_positive_loss(fg, 0.25).item(), GOLDEN["ccam_pos_loss_fg"], rtol=1e-5)


@pytest.mark.parametrize("radius,beta,t,distance", [(3, 10.0, 8, "mean"), (5, 2.0, 3, "sum"), (1, 1.0, 4, "mean")])
def test_sparse_random_walk_equals_dense_formula(radius, beta, t, distance):
    g = torch.Generator().manual_seed(radius)
    maps = torch.rand(2, 2, 9, 11, generator=g)
    feats = torch.randn(2, 5, 9, 11, generator=g) * 0.3
    sparse = random_walk(maps, feats, radius, beta, t, distance)
    dense = random_walk_dense(maps, feats, radius, beta, t, distance)
    torch.testing.assert_close(sparse, dense, rtol=1e-4, atol=1e-5)


def test_random_walk_stays_in_range_and_identity_at_radius_one():
    maps = torch.rand(1, 1, 8, 8)
    out = random_walk(maps, torch.randn(1, 4, 8, 8), radius=4, beta=5, t=6)
    assert out.min() >= maps.min() - 1e-6 and out.max() <= maps.max() + 1e-6
    torch.testing.assert_close(random_walk(maps, torch.randn(1, 4, 8, 8), radius=1, t=3), maps)


def test_offsets():
    assert len(disk_offsets(7)) == 145  # lattice points with dy^2 + dx^2 < 49
    half = half_disk_offsets(5)
    assert len(half) == (len(disk_offsets(5)) - 1) // 2 == 34  # AffinityNet's 34 offsets at radius 5
    assert all((-dy, -dx) not in half for dy, dx in half)


def test_trimap_and_pair_labels():
    m = torch.tensor([[[0.1, 0.5, 0.9, 0.9]]])
    tri = trimap(m, 0.4, 0.55)
    assert tri.tolist() == [[[0, 255, 1, 1]]]
    bg, fg, neg, offsets = affinity_labels(tri, 2)
    assert offsets == [(0, 1), (1, -1), (1, 0), (1, 1)]
    # pixel 2 -> pixel 3 (offset (0,1)) is fg-fg; pixel 0 -> 1 involves the ignore label
    assert fg[0, 0, 2] and not fg[0, 0, 0] and not neg[0, 0, 0] and not bg.any()


def test_affinity_loss_prefers_correct_affinities():
    pos = torch.tensor([True, False])
    neg = torch.tensor([False, True])
    none = torch.zeros(2, dtype=torch.bool)
    good = affinity_loss(torch.tensor([0.99, 0.01]), pos, none, neg)
    bad = affinity_loss(torch.tensor([0.01, 0.99]), pos, none, neg)
    assert good < 0.01 < bad


def test_crf_snaps_to_image_edges_and_parallel_equals_serial():
    img = np.zeros((4, 32, 32, 3), np.uint8)
    img[:, 8:24, 8:24] = 255
    prob = np.full((4, 32, 32), 0.3, np.float32)
    prob[:, 6:22, 6:22] = 0.8  # offset square
    s = CRFSettings(iters=10, bilateral_sxy=10, bilateral_srgb=13)
    serial = crf_batch(img, prob, s, workers=1)
    assert serial.dtype == np.uint8 and set(np.unique(serial)) <= {0, 1}
    inside = serial[0, 8:24, 8:24].mean()
    outside = serial[0][img[0, :, :, 0] == 0].mean()
    assert inside > 0.9 and outside < 0.1
    np.testing.assert_array_equal(crf_batch(img, prob, s, workers=2), serial)


def test_pamr_power_keeps_a_broad_background_response_out_of_the_mask():
    """The coarse map answers the audio everywhere a little and on the object most: min-max puts the
    broad background response (0.6 of the range here) above PAMR's 0.5 cut. ``pamr.power=2`` moves
    it to 0.36, so only the object stays; ``power=1`` (the paper's PAMR(M_crs)) keeps the frame."""
    from avs_core.config import PAMRParams
    from avs_core.pipeline.pamr import _fuse_and_refine

    frames = np.full((1, 1, 3, 64, 64), 40, np.uint8)
    frames[..., 20:44, 20:44] = 220  # the object
    coarse = np.full((1, 1, 64, 64), 0.5, np.float32)  # cosine similarity, the broad response
    coarse[..., 20:44, 20:44] = 0.9
    coarse[..., 0, 0] = -0.1  # the frame's minimum
    obj = np.zeros((64, 64), bool)
    obj[20:44, 20:44] = True
    eq6 = np.zeros((1, 1, 64, 64), np.uint8)
    masks = {power: _fuse_and_refine((frames, coarse, eq6, PAMRParams(fusion="av", power=power, size=64)))[2][0, 0] > 0.5
             for power in (1.0, 2.0)}
    assert masks[1.0][obj].all() and masks[1.0][~obj].mean() > 0.95
    assert masks[2.0][obj].all() and masks[2.0][~obj].mean() < 0.01


def test_residual_upsampling_keeps_the_edges_the_walk_grid_cannot_hold():
    """The walk runs on a grid 4x coarser than the frame. A walk that changes nothing (t = 0) must
    hand back the frame-resolution map as it was with ``upsample=residual``; ``bilinear`` (USPL,
    IRN) blurs its edges to the grid's resolution. With t > 0 the residual form carries the walk's
    change: the two forms differ by exactly the grid's lost detail."""
    from avs_core.config import AffinityParams
    from avs_core.pipeline.affinity import _walk, to_grid

    maps = np.zeros((2, 64, 64), np.float32)
    maps[:, 13:38, 21:50] = 1.0  # edges off the 4-pixel grid
    feats = torch.rand(2, 8, 16, 16)
    out = {}
    for t in (0, 4):
        for up in ("residual", "bilinear"):
            p = AffinityParams(size=16, t=t, upsample=up, max_growth=0.0)  # the forms, not the bound
            tri, grid, out[t, up] = _walk((maps, maps, feats, 1, 64, p))
            assert tri.shape == grid.shape == (1, 2, 16, 16) and out[t, up].shape == (1, 2, 64, 64)
    np.testing.assert_allclose(out[0, "residual"][0], maps, atol=1e-6)
    assert np.abs(out[0, "bilinear"][0] - maps).max() > 0.2  # the edges, blurred
    change = out[4, "bilinear"] - out[0, "bilinear"]
    assert np.abs(change).max() > 0.05
    inside = (out[4, "residual"] > 0) & (out[4, "residual"] < 1)  # where the clamp did not bite
    np.testing.assert_allclose(out[4, "residual"][inside], (maps[None] + change)[inside], atol=1e-5)
    assert to_grid(maps, 16).shape == (2, 16, 16)


def test_the_walk_rescaled_to_its_input_peak_keeps_a_small_object():
    """A 2 x 2-cell object whose affinity to the background is weak but not zero: eight steps of the
    walk spread its mass until no cell of it reaches 0.5 (the walk erases it); ``rescale: max``
    (IRN's ``rw / max(rw)``) scales the walked map back to its input's peak, so the object stays
    whole and the background stays out (within ``max_growth``, at its default)."""
    from avs_core.config import AffinityParams
    from avs_core.pipeline.affinity import _walk
    from avs_core.refine.random_walk import rescale_to_peak

    maps = np.zeros((1, 64, 64), np.float32)
    maps[0, 28:36, 28:36] = 1.0
    feats = torch.full((1, 8, 16, 16), 0.3)
    feats[..., 7:9, 7:9] = 0.0  # the object's cells
    obj = maps[0] > 0
    out = {}
    for rescale in ("none", "max"):
        p = AffinityParams(size=16, t=8, radius=4, rescale=rescale)
        _, grid, walked = _walk((maps, maps, feats, 1, 64, p))
        out[rescale] = (grid[0, 0], walked[0, 0])
    assert out["none"][0].max() < 0.1 and (out["none"][1][obj] > 0.5).mean() < 0.1
    assert out["max"][0].max() == pytest.approx(1.0, abs=1e-5)
    assert (out["max"][1][obj] > 0.5).all() and not (out["max"][1][~obj] > 0.5).any()
    assert not rescale_to_peak(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)).any()  # nothing to rescale

    # no edge at all: the walk levels the map, and rescaled, the level plateau is the whole frame;
    # max_growth hands such a frame back as the walk's input
    level = {g: _walk((maps, maps, torch.zeros(1, 8, 16, 16), 1, 64,
                       AffinityParams(size=16, t=8, radius=4, max_growth=g)))[2][0, 0] for g in (0.0, 2.0)}
    assert (level[0.0] > 0.5).all()
    np.testing.assert_allclose(level[2.0], maps[0], atol=1e-6)


def test_walk_candidates_put_the_configured_walk_first_and_t0_once():
    from avs_core.config import AffinityParams
    from avs_core.pipeline.affinity import walk_candidates

    cands = walk_candidates(AffinityParams(beta=10.0, t=8, val_betas=(5.0, 10.0), val_steps=(0, 2, 8)))
    assert cands[0] == (10.0, 8)  # ties keep the configured walk
    assert cands.count((10.0, 8)) == 1 and [c for c in cands if c[1] == 0] == [(10.0, 0)]
    assert set(cands) == {(10.0, 8), (10.0, 0), (5.0, 2), (5.0, 8), (10.0, 2)}


def walk_choice_project(workdir, case: str):
    """A validation split (6 videos of 32 px squares) and its PAMR maps under ``workdir``, and an
    affinity model: ``walk_helps``, the maps have whole grid cells flipped and the features tell the
    object from the background; ``walk_hurts``, the maps are the masks and the features are noise."""
    from avs_core.store import create_h5, write_strings

    rng = np.random.default_rng(0)
    videos, size, cell = 6, 32, 4
    masks = np.zeros((videos, 5, size, size), np.uint8)
    for v, k in np.ndindex(videos, 5):
        top, left = rng.integers(0, size // 2, 2) // cell * cell
        masks[v, k, top:top + size // 2, left:left + size // 2] = 1
    maps = masks.astype(np.float32)
    if case == "walk_helps":
        wrong = rng.random((videos, 5, size // cell, size // cell)) < 0.2
        maps = np.abs(maps - wrong.repeat(cell, -2).repeat(cell, -1))  # whole cells flipped
    with create_h5(workdir / "data/prepared/val.h5", stage="prepare") as f:
        write_strings(f, "ids", [f"v{i}" for i in range(videos)])
        f["frames"] = (rng.integers(0, 40, (videos, 5, 3, size, size)) + 200 * masks[:, :, None]).astype(np.uint8)
        f["masks"], f["annotated"] = masks, np.ones((videos, 5), bool)
    with create_h5(workdir / "data/pamr/val.h5", stage="pamr") as f:
        write_strings(f, "ids", [f"v{i}" for i in range(videos)])
        f["pamr"] = f["coarse"] = maps

    def model(images, grid):  # [N, 3, S, S] -> [N, D, g, g]
        if case == "walk_hurts":
            return torch.randn(len(images), 4, grid, grid, generator=torch.Generator().manual_seed(0))
        return torch.nn.functional.adaptive_avg_pool2d(images.mean(1, keepdim=True), grid)

    return model, size, size // cell


@pytest.mark.parametrize("case", ["walk_helps", "walk_hurts"])
def test_walk_is_chosen_on_validation(workdir, case):
    """``affinity.choose: val`` keeps the walk whose validation mIoU is best. Where the map to walk
    has whole grid cells wrong inside and outside the object and the features tell the object from
    the background, walking mends the cells (t > 0 wins); where the map is already the mask and the
    features are noise, every step spreads it (t = 0, the map unchanged, wins)."""
    from avs_core.config import AffinityParams, PathsParams
    from avs_core.data.splits import load_masks
    from avs_core.pipeline.affinity import choose_walk

    model, size, grid = walk_choice_project(workdir, case)
    paths = PathsParams(prepared="data/prepared", pamr="data/pamr")
    p = AffinityParams(size=grid, val_betas=(10.0,), val_steps=(0, 1, 2, 4, 8))
    beta, t, scores = choose_walk(p, model, paths, size, load_masks("val", workdir / "data/prepared"))
    assert scores[f"beta={beta:g} t={t}"] == max(scores.values())
    if case == "walk_helps":
        assert t > 0 and scores[f"beta={beta:g} t={t}"] > scores["beta=10 t=0"] + 0.05
    else:
        assert t == 0 and scores["beta=10 t=0"] > 0.99 and scores["beta=10 t=8"] < 0.95


def test_walk_choice_passes_the_validation_frames_through_the_net_once(workdir, monkeypatch):
    """The candidates share one feature pass where the features fit in ``VAL_FEATURES_BYTES``, and
    score as they do with a pass per candidate (the bound at 0)."""
    from avs_core.config import AffinityParams, PathsParams
    from avs_core.data.splits import load_masks
    from avs_core.pipeline import affinity

    model, size, grid = walk_choice_project(workdir, "walk_helps")
    calls = []

    def counted(images, g):
        calls.append(len(images))
        return model(images, g)

    paths = PathsParams(prepared="data/prepared", pamr="data/pamr")
    p = AffinityParams(size=grid, val_betas=(10.0, 20.0), val_steps=(0, 1, 4))
    truth = load_masks("val", workdir / "data/prepared")
    once = affinity.choose_walk(p, counted, paths, size, truth)
    frames_once, calls[:] = sum(calls), []
    monkeypatch.setattr(affinity, "VAL_FEATURES_BYTES", 0)
    each = affinity.choose_walk(p, counted, paths, size, truth)
    candidates = len(affinity.walk_candidates(p))
    assert once == each and candidates == 6
    assert frames_once == 6 * 5 and sum(calls) == candidates * 6 * 5

def test_c2am_refinement_snaps_a_spilling_map_to_the_object():
    """C^2AM's stride-8 map spills over the object's edge; refined on the frame (c2am.refine) it
    follows the edge: IoU with the object rises from the blurred map's to above 0.9."""
    from avs_core.config import C2AMRefineParams
    from avs_core.pipeline.c2am import refine_c2am

    s = 64
    obj = np.zeros((s, s), bool)
    obj[20:40, 24:44] = True
    frame = np.full((3, s, s), 90, np.uint8)
    frame[:, obj] = np.array([200, 60, 40], np.uint8)[:, None]
    coarse = torch.zeros(1, 1, s // 8, s // 8)
    coarse[..., 2:5, 3:6] = 1.0  # the object's cells at stride 8, and a cell more on each side
    coarse = F.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)[0, 0].numpy() * 0.9 + 0.05
    iou = lambda m: ((m > 0.5) & obj).sum() / ((m > 0.5) | obj).sum()  # noqa: E731
    refined = refine_c2am(frame[None, None], coarse[None, None], C2AMRefineParams(iters=30, size=s))[0, 0]
    assert refined.shape == (s, s) and refined.dtype == np.float32 and 0 <= refined.min() <= refined.max() <= 1
    assert iou(coarse) < 0.75 and iou(refined) > 0.9, (iou(coarse), iou(refined))
