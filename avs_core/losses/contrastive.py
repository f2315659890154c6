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


def m2icl_loss(audio: torch.Tensor, visual: list[torch.Tensor], tau: float, mask_drop: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """WS-AVS Eq. 5 (summed over scales), with USPL's mask augmentation.

    Args:
        audio: ``[B, D]`` audio embeddings.
        visual: per scale ``[B, D, H_s, W_s]`` visual maps.
        tau: temperature (> 0).
        mask_drop: fraction of locations dropped per image (0 disables).

    Returns:
        scalar: mean over the batch of L_a->v + L_v->a, summed over scales.
    """
    target = torch.arange(audio.shape[0], device=audio.device)
    total = audio.new_zeros(())
    for v in visual:
        keep = random_keep_mask((v.shape[0], *v.shape[2:]), mask_drop, generator, v.device) if mask_drop > 0 else None
        logits = mil_similarity(audio, v, keep) / tau  # [B_audio, B_image]
        total = total + F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)
    return total
