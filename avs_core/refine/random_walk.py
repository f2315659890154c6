"""Affinity random walk (AffinityNet / IRNet; USPL Eq. 3, 7, 8) on the sparse local structure.

A(i, j) = exp(-d(f_i, f_j)) for pixels within ``radius`` (x^2 + y^2 < r^2, self included with
A(i, i) = 1), 0 elsewhere; d is the mean absolute difference over feature channels (what the
AffinityNet code computes; ``distance="sum"`` gives the paper's L1). T = D^-1 A^beta with
D_ii = sum_j A^beta_ij, and M_fine = T^t vec(M). Only the K = O(r^2) neighbours of each pixel are
stored, so memory is O(K HW) instead of the dense O((HW)^2); :func:`random_walk_dense` is the
dense formula, kept for tests and benchmarks.
"""
from __future__ import annotations

import torch

from avs_core.refine.neighbours import offset_index


def disk_offsets(radius: int) -> list[tuple[int, int]]:
    """All offsets with dy^2 + dx^2 < radius^2, the centre first."""
    r = int(radius)
    out = [(dy, dx) for dy in range(-r + 1, r) for dx in range(-r + 1, r) if dy * dy + dx * dx < r * r]
    out.remove((0, 0))
    return [(0, 0)] + out


def half_disk_offsets(radius: int) -> list[tuple[int, int]]:
    """One offset of each symmetric pair (AffinityNet's label pairs): (0, x>0) and (y>0, any x)."""
    return [(dy, dx) for dy, dx in disk_offsets(radius)[1:] if dy > 0 or (dy == 0 and dx > 0)]


def pair_distance(feats: torch.Tensor, offsets: list[tuple[int, int]], distance: str = "mean"):
    """d(f_i, f_{i+o}) for each offset: ``[B, K, H, W]``, the ``[K, H*W]`` index and in-image mask.

    One offset at a time, so memory is O(B C HW) rather than O(B C K HW).
    """
    b, c, h, w = feats.shape
    index, inside = offset_index(h, w, offsets, feats.device)
    flat = feats.reshape(b, c, h * w)
    reduce = torch.mean if distance == "mean" else torch.sum
    d = torch.stack([reduce((flat - flat[:, :, idx]).abs(), dim=1) for idx in index], dim=1)  # [B, K, HW]
    return d.view(b, len(offsets), h, w), index, inside


def sparse_transition(feats: torch.Tensor, radius: int, beta: float, distance: str = "mean"):
    """Row-normalised ``T`` on the disk: ``[B, K, H*W]`` weights and the ``[K, H*W]`` neighbour index."""
    offsets = disk_offsets(radius)
    d, index, inside = pair_distance(feats, offsets, distance)
    a = torch.exp(-beta * d).flatten(2) * inside.unsqueeze(0)  # A^beta = exp(-beta d), 0 outside
    return a / a.sum(dim=1, keepdim=True), index


def random_walk(maps: torch.Tensor, affinity_features: torch.Tensor, radius: int = 7, beta: float = 10.0,
                t: int = 8, distance: str = "mean") -> torch.Tensor:
    """Propagate maps along learned affinities.

    Args:
        maps: ``[B, C, H, W]`` maps to refine (e.g. the PAMR-refined sounding map).
        affinity_features: ``[B, D, H, W]`` features on the same grid.
        radius: neighbourhood radius r.
        beta: exponent on the affinities.
        t: number of walk steps (T^t).

    Returns:
        ``[B, C, H, W]``; every step is a convex combination, so values stay in the input's range.
    """
    b, c, h, w = maps.shape
    trans, index = sparse_transition(affinity_features.float(), radius, beta, distance)
    m = maps.float().reshape(b, c, h * w)
    for _ in range(t):
        m = (m[:, :, index] * trans.unsqueeze(1)).sum(dim=2)  # [B, C, HW]
    return m.view(b, c, h, w)


def rescale_to_peak(walked: torch.Tensor, maps: torch.Tensor, max_growth: float = 0.0) -> torch.Tensor:
    """``walked [B, C, H, W]`` scaled per map so that its maximum equals that of ``maps`` (the walk's
    input, same shape); a map whose walk is all zero stays zero. With ``max_growth`` > 0, a map whose
    rescaled walk covers more than ``max_growth`` x the input's area above 0.5 (at least one cell) is
    handed back as the input: that walk spread the map over the frame instead of refining it.

    IRN divides the walked CAMs by their maximum (``rw_up / torch.max(rw_up)``) before its threshold;
    its CAMs enter the walk max-normalised, so this is the same step for inputs that are not. Why: the
    walk spreads each map's mass over its neighbourhood, so a small object loses its peak and falls
    under a fixed threshold: on `shapes` S4 the walk cost 7 test frames more than 0.2 IoU against
    PAMR, five of them the whole object. Why the bound: where the affinity across an object's edge is
    weak (pastel objects on one-colour backgrounds, `flat`), the walk levels the map, and rescaled, the
    level plateau is the whole frame: 80 of 480 `flat` S4 train frames covered more than 0.4 of the
    frame, against 0 for PAMR's maps and 1 for the unscaled walk (docs/BENCHMARKS.md, session 33)."""
    peak_in = maps.flatten(2).amax(-1)[..., None, None]  # [B, C, 1, 1]
    peak_out = walked.flatten(2).amax(-1)[..., None, None]
    scaled = walked * (peak_in / peak_out.clamp_min(1e-12))
    if max_growth <= 0:
        return scaled
    cell = 1.0 / maps[0, 0].numel()
    area_in = (maps > 0.5).flatten(2).float().mean(-1).clamp_min(cell)  # [B, C]
    area_out = (scaled > 0.5).flatten(2).float().mean(-1)
    spread = (area_out > max_growth * area_in)[..., None, None]
    return torch.where(spread, maps.to(scaled.dtype), scaled)


def random_walk_dense(maps: torch.Tensor, affinity_features: torch.Tensor, radius: int = 7, beta: float = 10.0,
                      t: int = 8, distance: str = "mean") -> torch.Tensor:
    """The same walk with the dense ``[HW, HW]`` matrix and ``T^t`` by matrix power (reference form)."""
    b, c, h, w = maps.shape
    f = affinity_features.float().flatten(2)  # [B, D, HW]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    near = ((ys[:, None] - ys[None]) ** 2 + (xs[:, None] - xs[None]) ** 2) < radius * radius  # [HW, HW]
    out = []
    for i in range(b):
        diff = (f[i].t()[:, None, :] - f[i].t()[None, :, :]).abs()  # [HW, HW, D]
        d = diff.mean(-1) if distance == "mean" else diff.sum(-1)
        a = torch.exp(-beta * d) * near
        trans = a / a.sum(dim=1, keepdim=True)  # D^-1 A^beta
        out.append(maps[i].float().reshape(c, -1) @ torch.linalg.matrix_power(trans, t).t())
    return torch.stack(out).view(b, c, h, w)
