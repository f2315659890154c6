"""The validation retrieval of ``align`` streams (bounded memory) and matches the dense computation."""
import numpy as np
import torch

from avs_core.config import AlignmentParams
from avs_core.losses import contrastive
from avs_core.pipeline import align
from tests.ddp_align_worker import split

P = AlignmentParams(dim=16, image_size=32, proj_dropout=0.0)


@torch.no_grad()
def dense_retrieval(model, s) -> dict[str, float]:
    """Every audio against every image at once: the [N, N, h, w] volume the stage cannot afford."""
    model.eval()
    v, t = s.frames.shape[:2]
    images = align.augment(torch.from_numpy(s.frames.reshape(v * t, *s.frames.shape[2:])), P.image_size, None, False)
    a, maps, _ = model(images, torch.from_numpy(s.audio.reshape(v * t, *s.audio.shape[2:])))
    sim = sum(contrastive.mil_similarity(a, m) for m in maps)  # [N, N]
    best_video = sim.argmax(dim=1).numpy() // t
    own = np.arange(v * t) // t
    return {"video": float((best_video == own).mean()),
            "category": float((s.labels[best_video] == s.labels[own]).mean())}


def test_streamed_retrieval_matches_dense_and_stays_in_blocks(monkeypatch):
    torch.manual_seed(0)
    model = align.AlignModel(P)
    s = split(7, 3)  # 35 frames: neither block size divides it
    shapes = []
    real = align.mil_similarity
    monkeypatch.setattr(align, "mil_similarity", lambda a, v, keep=None: shapes.append((len(a), len(v))) or real(a, v, keep))
    streamed = align.retrieval_top1(model, s, P, torch.device("cpu"), block=4, audio_chunk=6)
    assert max(a for a, _ in shapes) == 6 and max(v for _, v in shapes) == 4
    expected = dense_retrieval(model, s)
    assert streamed == expected
    assert expected["video"] not in (0.0, 1.0)  # a random model: the figure depends on which frame wins
    assert align.retrieval_top1(model, s, P, torch.device("cpu")) == expected
