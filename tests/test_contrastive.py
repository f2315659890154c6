import math

import pytest
import torch
import torch.nn.functional as F

from avs_core.losses.contrastive import m2icl_loss, mil_similarity, random_keep_mask


def toy(b=6, d=8, h=3, w=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(b, d, generator=g), dim=1)
    v = F.normalize(torch.randn(b, d, h, w, generator=g), dim=1)
    return a, v


def ezvsl_loss(a, v, tau):
    """EZ-VSL max_xmil_loss as written in its repository."""
    slogits = torch.einsum("nchw,mc->nmhw", v, a) / tau
    logits = slogits.flatten(-2, -1).max(dim=-1)[0]
    labels = torch.arange(len(a))
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


def test_single_scale_without_drop_equals_ezvsl():
    a, v = toy()
    torch.testing.assert_close(m2icl_loss(a, [v], tau=0.03), ezvsl_loss(a, v, 0.03))


def test_multi_scale_is_sum_of_scales():
    a, v1 = toy(seed=1)
    _, v2 = toy(seed=2, h=2, w=2)
    total = m2icl_loss(a, [v1, v2], 0.07)
    torch.testing.assert_close(total, m2icl_loss(a, [v1], 0.07) + m2icl_loss(a, [v2], 0.07))


def test_symmetric_under_swapping_roles():
    # with 1x1 maps audio and image play symmetric roles: swapping them leaves the loss unchanged
    a, v = toy(h=1, w=1)
    swapped = m2icl_loss(v[:, :, 0, 0], [a[:, :, None, None]], 0.1)
    torch.testing.assert_close(m2icl_loss(a, [v], 0.1), swapped)


def test_mil_similarity_is_max_over_locations_and_respects_drop():
    a, v = toy()
    sim = mil_similarity(a, v)
    brute = torch.stack([torch.stack([(v[j] * a[i][:, None, None]).sum(0).max() for j in range(6)]) for i in range(6)])
    torch.testing.assert_close(sim, brute)
    keep = torch.zeros(6, 3, 3, dtype=torch.bool)
    keep[:, 0, 0] = True
    torch.testing.assert_close(mil_similarity(a, v, keep), torch.einsum("ad,vd->av", a, v[:, :, 0, 0]))


def test_keep_mask_fraction_and_never_empty():
    g = torch.Generator().manual_seed(0)
    keep = random_keep_mask((200, 8, 8), 0.5, g)
    assert abs(keep.float().mean().item() - 0.5) < 0.02
    assert random_keep_mask((50, 2, 2), 0.99, g).flatten(1).any(1).all()


def test_drop_changes_loss_and_zero_drop_does_not():
    a, v = toy()
    g = torch.Generator().manual_seed(0)
    assert m2icl_loss(a, [v], 0.07, 0.0, g) == m2icl_loss(a, [v], 0.07)
    assert m2icl_loss(a, [v], 0.07, 0.5, g) != m2icl_loss(a, [v], 0.07)


def test_loss_decreases_on_toy_problem():
    torch.manual_seed(0)
    a_raw = torch.randn(8, 4, requires_grad=True)
    v_raw = torch.randn(8, 4, 2, 2, requires_grad=True)
    opt = torch.optim.Adam([a_raw, v_raw], lr=0.05)
    losses = []
    for _ in range(60):
        loss = m2icl_loss(F.normalize(a_raw, dim=1), [F.normalize(v_raw, dim=1)], 0.1, 0.25,
                          torch.Generator().manual_seed(len(losses)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_small_tau_is_finite_and_sharp():
    a, v = toy()
    for tau in (1e-1, 1e-2, 1e-3):
        assert torch.isfinite(m2icl_loss(a, [v], tau))
    perfect = F.normalize(torch.eye(6), dim=1)
    v_perfect = perfect[:, :, None, None]
    assert m2icl_loss(perfect, [v_perfect], 1e-3) < 1e-6  # separable: loss -> 0 as tau -> 0
    assert m2icl_loss(perfect, [v_perfect], 1e3) == pytest.approx(2 * math.log(6), rel=1e-3)  # tau large: chance
