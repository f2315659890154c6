"""The engine loop every trained stage uses: schedule, EMA, curves, resume, finite-loss check."""
import copy

import pytest
import torch
from torch import nn

from avs_core.engine.distributed import SINGLE
from avs_core.engine.loop import LoopSpec, local_loss, log_points, train
from avs_core.runtime import DivergedError

X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0])


def batch_at(i: int) -> torch.Tensor:
    return torch.randperm(64, generator=torch.Generator().manual_seed(i))[:16]


def step(m, idx):
    return local_loss(((m(X[idx])[:, 0] - Y[idx]) ** 2).mean())


def fresh(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 1))
    return model, torch.optim.Adam(model.parameters(), lr=0.05)


SPEC = LoopSpec("toy", "toy.lr", steps=30, log_every=8, warmup=3, ema=0.9)


def test_log_points_end_at_the_last_step():
    assert log_points(SPEC) == [8, 16, 24, 30]


def test_learns_and_reports_a_curve():
    model, opt = fresh(0)
    out = train(model, opt, SPEC, batch_at, step, SINGLE, validate=lambda kept: {"val": float(kept[0].weight.detach().sum())})
    points = out["points"]
    assert [p["step"] for p in points] == [8, 16, 24, 30] and all("val" in p for p in points)
    assert points[-1]["loss"] < 0.2 * out["initial"]
    assert out["kept"] is not model  # the EMA copy
    assert not torch.equal(out["kept"][0].weight, model[0].weight)


def test_resume_matches_uninterrupted():
    model, opt = fresh(0)
    states = []
    train(model, opt, SPEC, batch_at, step, SINGLE, on_log=lambda n, m, s: states.append(copy.deepcopy(s)))
    resumed, opt2 = fresh(1)  # another init: everything must come from the state
    out = train(resumed, opt2, SPEC, batch_at, step, SINGLE, start=states[1])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    assert [p["step"] for p in out["points"]] == [8, 16, 24, 30]
    for key, value in out["kept"].state_dict().items():  # the EMA weights too
        torch.testing.assert_close(value, states[-1]["ema"][f"module.{key}"], rtol=0, atol=0)


def test_diverged_loss_names_the_lr_param():
    model, opt = fresh(0)
    with pytest.raises(DivergedError, match="toy.lr"):
        train(model, opt, SPEC, batch_at, lambda m, idx: local_loss(m(X[idx]).sum() * float("nan")), SINGLE)


def test_seed_everything_asks_torch_for_deterministic_kernels(monkeypatch):
    """The private eager flag (no torch._inductor import at start) sets what the public call sets;
    where a torch release drops the private name, the public call stands in."""
    from avs_core.runtime import seed_everything
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        calls = []
        monkeypatch.delattr(torch._C, "_set_deterministic_algorithms")
        monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: calls.append((a, k)))
        seed_everything(0)
        assert calls == [((True,), {"warn_only": True})]
    finally:
        monkeypatch.undo()
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
