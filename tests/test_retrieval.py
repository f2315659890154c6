"""The validation retrieval of ``align`` streams (bounded memory) and matches the dense computation."""

import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import AlignmentParams
from avs_core.losses import contrastive
from avs_core.models.encoders import normalize_images
from avs_core.pipeline import align
from tests.ddp_align_worker import split

P = AlignmentParams(dim=16, image_size=32, proj_dropout=0.0)


def masks_for(s, seed: int = 0) -> np.ndarray:
    """Random blobs at the frames' size; one frame has nothing sounding in view."""
    v, t = s.frames.shape[:2]
    m = (np.random.default_rng(seed).random((v, t, 32, 32)) < 0.2).astype(np.uint8)
    m[0, 2] = 0
    return m


@torch.no_grad()
def dense_retrieval(model, s, masks) -> dict[str, float]:
    """Every audio against every image (and every sounding object) at once: the [N, N, h, w]
    volume the stage cannot afford."""
    model.eval()
    v, t = s.frames.shape[:2]
    images = align.augment(torch.from_numpy(s.frames.reshape(v * t, *s.frames.shape[2:])), P.image_size, None, False)
    a, maps, _ = model(images, torch.from_numpy(s.audio.reshape(v * t, *s.audio.shape[2:])))
    own = np.arange(v * t) // t
    best_video = sum(contrastive.mil_similarity(a, m) for m in maps).argmax(dim=1).numpy() // t  # [N]
    m = torch.from_numpy(masks.reshape(v * t, 1, 32, 32)).float()
    objects = torch.zeros(v * t, v * t)
    for v_s in maps:  # the mask's mean of each location's embedding, then cosine
        w = F.interpolate(m, size=v_s.shape[-2:], mode="area")
        objects += a @ F.normalize((v_s * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-6), dim=1).T
    objects[:, masks.reshape(v * t, -1).max(1) == 0] = float("-inf")
    best_object = objects.argmax(dim=1).numpy() // t
    return {"video": float((best_video == own).mean()),
            "category": float((s.labels[best_video] == s.labels[own]).mean()),
            "object_category": float((s.labels[best_object] == s.labels[own]).mean())}


def test_streamed_retrieval_matches_dense_and_stays_in_blocks(monkeypatch):
    torch.manual_seed(0)
    model = align.AlignModel(P)
    s = split(7, 3)  # 35 frames: neither block size divides it
    masks = masks_for(s)
    shapes = []
    real = align.mil_similarity
    monkeypatch.setattr(align, "mil_similarity", lambda a, v, keep=None: shapes.append((len(a), len(v))) or real(a, v, keep))
    streamed = align.retrieval_top1(model, s, P, torch.device("cpu"), masks, block=4, audio_chunk=6)
    assert max(a for a, _ in shapes) == 6 and max(v for _, v in shapes) == 4
    expected = dense_retrieval(model, s, masks)
    assert streamed == expected
    assert expected["video"] not in (0.0, 1.0)  # a random model: the figure depends on which frame wins
    assert align.retrieval_top1(model, s, P, torch.device("cpu"), masks) == expected


def test_object_retrieval_is_not_capped_by_silent_objects():
    """Frames that show a silent object of the audio's category fool image retrieval, not object
    retrieval. A hand-built model: category k's audio embeds as the unit vector e_k; each frame
    shows its own category's object in the left half (the mask) and a silent object of the next
    category in the right half, and every pixel embeds as the one-hot of what is drawn there."""
    s = split(6, 0)  # labels 0, 1, 2, 0, 1, 2
    v, t, size = 6, 5, 32
    masks = np.zeros((v, t, size, size), np.uint8)
    masks[..., :16] = 1
    s.audio[...] = 0
    s.audio[:, :, 0, 0, 0] = s.labels[:, None]  # the clip's category, as a marker the audio side reads
    s.frames[...] = 0
    s.frames[:, :, 0, 0, 0] = s.labels[:, None] * 100  # and a marker pixel for the visual side
    markers = normalize_images(torch.arange(3, dtype=torch.uint8).mul(100).view(3, 1, 1, 1).expand(3, 3, 1, 1))[:, 0, 0, 0]

    class OneHotAudio(torch.nn.Module):
        def query(self, spec):  # [B, 1, F, Tt] -> [B, 3]
            return F.one_hot(spec[:, 0, 0, 0].long(), 3).float()

    class OneHot(torch.nn.Module):
        scales = (1,)

        def __init__(self):
            super().__init__()
            self.audio = OneHotAudio()

        def visual(self, images):  # [B, 3, S, S] -> [[B, 3, S, S]]
            k = (images[:, 0, 0, 0, None] - markers).abs().argmin(1)  # [B]
            out = torch.zeros(len(images), 3, size, size)
            out[..., :16] = F.one_hot(k, 3).float()[:, :, None, None]
            out[..., 16:] = F.one_hot((k + 1) % 3, 3).float()[:, :, None, None]
            return [out]

    out = align.retrieval_top1(OneHot(), s, AlignmentParams(dim=3, image_size=size), torch.device("cpu"), masks)
    assert out["object_category"] == 1.0
    # image retrieval: frames of category k and k - 1 both show a k object; the first one wins
    assert out["category"] == 1 / 3


def test_coarse_maps_share_one_visual_pass_and_match_the_cosine_map():
    """Own and shuffled audio from one visual pass give the maps that each pairing gives alone,
    and each map is the cosine of the frame's (or the other video's) audio with every location."""
    torch.manual_seed(0)
    s = split(5, 3)
    model = align.AlignModel(P)
    order = align.shuffled_audio_order(len(s), s.labels, 0)
    assert (order != np.arange(len(s))).all() and (s.labels[order] != s.labels).all()
    both = list(align.coarse_maps(model, s, P, 32, "cpu", (None, order), batch_videos=2))
    for audio_order, k in ((None, 0), (order, 1)):
        alone = list(align.coarse_maps(model, s, P, 32, "cpu", (audio_order,), batch_videos=2))
        for (start, pairs), (start_alone, [(per_scale, fused)]) in zip(both, alone):
            assert start == start_alone
            np.testing.assert_array_equal(pairs[k][1], fused)
            for a, b in zip(pairs[k][0], per_scale):
                np.testing.assert_array_equal(a, b)
    (start, pairs) = both[1]  # videos 2 and 3, frame 4, shuffled audio, scale 2
    v = start + 1
    with torch.no_grad():
        image = align.augment(torch.from_numpy(s.frames[v, 4:5]), P.image_size, None, False)
        a = model.audio(torch.from_numpy(s.audio[order[v], 4:5]))  # [1, D]
        location = model.visual(image)[1][0, :, 2, 3]  # [D] at row 2, column 3
    assert abs(float(a[0] @ location) - pairs[1][0][1][1, 4, 2, 3]) < 1e-5


def test_audio_centre_is_the_train_mean_and_the_maps_take_it_off():
    """``set_audio_centre`` stores weight x the mean embedding of the split's clips; the coarse map
    is then the cosine of each location with the audio embedding minus it, L2-normalised again."""
    torch.manual_seed(0)
    s = split(4, 2)
    model = align.AlignModel(P).eval()
    with torch.no_grad():
        every = model.audio(torch.from_numpy(s.audio.reshape(-1, *s.audio.shape[2:])))  # [V*T, D]
    norm = align.set_audio_centre(model, s, 0.5, "cpu")
    assert abs(norm - float(every.mean(0).norm())) < 1e-5
    torch.testing.assert_close(model.audio.centre, 0.5 * every.mean(0), atol=1e-6, rtol=0)
    # a subset of evenly spaced clips when the split has more than max_clips
    align.set_audio_centre(model, s, 1.0, "cpu", max_clips=3)
    torch.testing.assert_close(model.audio.centre, every[[0, 10, 19]].mean(0), atol=1e-6, rtol=0)

    [(start, [(per_scale, _)])] = list(align.coarse_maps(model, s, P, 32, "cpu", batch_videos=4))
    with torch.no_grad():
        image = align.augment(torch.from_numpy(s.frames[1, 2:3]), P.image_size, None, False)
        query = F.normalize(every[1 * 5 + 2] - model.audio.centre, dim=0)  # [D]
        location = model.visual(image)[0][0, :, 1, 1]  # [D]
    assert abs(float(query @ location) - per_scale[0][1, 2, 1, 1]) < 1e-5
    assert abs(float(every[7] @ location) - per_scale[0][1, 2, 1, 1]) > 1e-3  # the centre changed the map
