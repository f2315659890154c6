"""An interrupted alignment run resumes from its last epoch and ends exactly where an uninterrupted one does."""
import copy
import dataclasses
import json

import pytest
import torch

from avs_core.pipeline import align
from avs_core.config import AlignmentParams
from avs_core.engine.checkpoint import Resumer
from avs_core.engine.distributed import DistInfo
from tests.ddp_align_worker import split

P = AlignmentParams(dim=16, image_size=32, epochs=2, batch_size=4, lr=1e-3, mask_drop=0.3, proj_dropout=0.2)
ONE = DistInfo(0, 1, torch.device("cpu"))


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_matches_uninterrupted(tmp_path, ema):
    p = dataclasses.replace(P, ema=ema)
    train, val = split(4, 0), split(4, 1)  # 5 steps an epoch
    torch.manual_seed(0)
    full = align.AlignModel(p, classes=3)
    states = []
    _, full_kept = align.train(full, train, val, p, ONE, lambda e, m, s: states.append(copy.deepcopy(s)))
    assert (full_kept is full) == (ema == 0)
    resumer = Resumer(tmp_path / "r.pt", json.dumps({"p": 1}), enabled=True)
    resumer.keep(states[0])  # as if the run died during epoch 2
    start = resumer.restore()
    assert start is not None and start["step"] == states[0]["step"] > 0 and len(start["points"]) == 1
    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    resumed = align.AlignModel(p, classes=3)
    _, resumed_kept = align.train(resumed, train, val, p, ONE, None, start)
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    for key, value in full_kept.state_dict().items():  # the weight average resumes too
        torch.testing.assert_close(resumed_kept.state_dict()[key], value, rtol=0, atol=0)
    resumer.finish()
    assert not (tmp_path / "r.pt").exists()


def test_resume_ignores_state_of_other_params(tmp_path):
    Resumer(tmp_path / "r.pt", "a", enabled=True).keep({"step": 3})
    assert Resumer(tmp_path / "r.pt", "b", enabled=True).restore() is None
    assert Resumer(tmp_path / "r.pt", "a", enabled=False).restore() is None
