"""Multiple-instance audio-visual contrastive losses.

* EZ-VSL (single scale): sim(a_i, v_m) = max over locations of cos(a_i, v_m(x)); symmetric
  cross-entropy over the batch with temperature tau.
* WS-AVS M^2ICL (Eq. 3-5): the same, summed over the visual scales.
* USPL MMICL (Eq. 2): during training a random fraction ``mask_drop`` (delta) of each image's
  locations is dropped before the max, so the loss cannot rest on a single location.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mil_similarity(audio: torch.Tensor, visual: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Max-pooled cosine similarity of every audio with every image.

    Args:
        audio: ``[Ba, D]`` L2-normalised.
        visual: ``[Bv, D, H, W]`` L2-normalised over D.
        keep: optional ``[Bv, H, W]`` bool; dropped locations cannot be the max.

    Returns:
        ``[Ba, Bv]`` in [-1, 1].
    """
    sim = torch.einsum("ad,vdhw->avhw", audio, visual).flatten(2)  # [Ba, Bv, HW]
    if keep is not None:
        sim = sim.masked_fill(~keep.flatten(1).unsqueeze(0), float("-inf"))
    return sim.max(dim=-1).values


def random_keep_mask(shape: tuple[int, int, int], drop: float, generator: torch.Generator | None,
                     device=None) -> torch.Tensor:
    """``[B, H, W]`` bool with a fraction ``drop`` of False; at least one True per image."""
    b, h, w = shape
    keep = torch.rand(b, h * w, generator=generator, device=device) >= drop
    none_kept = ~keep.any(dim=1)
    keep[none_kept, 0] = True
    return keep.view(b, h, w)


def infonce_rows(logits: torch.Tensor, row_offset: int = 0) -> torch.Tensor:
    """Cross-entropy of each row against its positive column.

    ``logits`` is ``[b, B]``: rows are local samples, columns the (global) batch; the positive of
    row i is column ``row_offset + i``.
    """
    b = logits.shape[0]
    target = torch.arange(row_offset, row_offset + b, device=logits.device)
    return F.cross_entropy(logits, target)


def m2icl_loss(audio: torch.Tensor, visual: list[torch.Tensor], tau: float, mask_drop: float = 0.0,
               generator: torch.Generator | None = None,
               audio_all: torch.Tensor | None = None, visual_all: list[torch.Tensor] | None = None,
               row_offset: int = 0) -> torch.Tensor:
    """WS-AVS Eq. 5 (summed over scales), with USPL's mask augmentation.

    Args:
        audio: ``[B, D]`` local audio embeddings.
        visual: per scale ``[B, D, H_s, W_s]`` local visual maps.
        tau: temperature (> 0).
        mask_drop: fraction of locations dropped per image (0 disables).
        audio_all, visual_all: the global batch gathered over processes (defaults to the local one);
            the local samples sit at rows ``row_offset .. row_offset + B``.

    Returns:
        scalar: mean over local samples of L_a->v + L_v->a, summed over scales.
    """
    audio_all = audio if audio_all is None else audio_all
    visual_all = visual if visual_all is None else visual_all
    total = audio.new_zeros(())
    for v_local, v_all in zip(visual, visual_all):
        keep_all = None
        if mask_drop > 0:
            keep_all = random_keep_mask((v_all.shape[0], *v_all.shape[2:]), mask_drop, generator, v_all.device)
        keep_local = None if keep_all is None else keep_all[row_offset:row_offset + audio.shape[0]]
        a2v = mil_similarity(audio, v_all, keep_all) / tau  # [b, B]
        v2a = mil_similarity(audio_all, v_local, keep_local).t() / tau  # [b, B]
        total = total + infonce_rows(a2v, row_offset) + infonce_rows(v2a, row_offset)
    return total
