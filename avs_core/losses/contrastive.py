"""Multiple-instance audio-visual contrastive losses.

* EZ-VSL (single scale): sim(a_i, v_m) = max over locations of cos(a_i, v_m(x)); symmetric
  cross-entropy over the batch with temperature tau.
* WS-AVS M^2ICL (Eq. 3-5): the same, summed over the visual scales.
* USPL MMICL (Eq. 2): during training a random fraction ``mask_drop`` (delta) of each image's
  locations is dropped before the max, so the loss cannot rest on a single location.
* Label-aware variant (weak labels, WS-AVS's instance-level class): clips of the same category
  are not negatives; the target of each row is spread evenly over the same-category columns.
"""
from __future__ import annotations

import math

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


def contrast_targets(batch: int, labels: torch.Tensor | None, device=None) -> torch.Tensor:
    """``[B, B]`` row-stochastic targets: the identity, or with ``labels`` (all >= 0) uniform over
    the columns of the same category."""
    if labels is None:
        return torch.eye(batch, device=device)
    same = (labels[:, None] == labels[None, :]).float().to(device)
    return same / same.sum(dim=1, keepdim=True)


def m2icl_loss(audio: torch.Tensor, visual: list[torch.Tensor], tau: float, mask_drop: float = 0.0,
               generator: torch.Generator | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
    """WS-AVS Eq. 5 (summed over scales), with USPL's mask augmentation.

    Args:
        audio: ``[B, D]`` audio embeddings.
        visual: per scale ``[B, D, H_s, W_s]`` visual maps.
        tau: temperature (> 0).
        mask_drop: fraction of locations dropped per image (0 disables).
        labels: optional ``[B]`` category per clip: same-category clips become positives
            (``None`` = the self-supervised loss, each clip its own class).

    Returns:
        scalar: mean over the batch of L_a->v + L_v->a, summed over scales. Its chance level
        (every logit equal) is ``2 * len(visual) * ln(B)`` without labels.
    """
    target = contrast_targets(audio.shape[0], labels, audio.device)
    total = audio.new_zeros(())
    for v in visual:
        keep = random_keep_mask((v.shape[0], *v.shape[2:]), mask_drop, generator, v.device) if mask_drop > 0 else None
        logits = mil_similarity(audio, v, keep) / tau  # [B_audio, B_image]
        total = total + F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)
    return total


def m2icl_chance(batch: int, scales: int) -> float:
    """The loss of :func:`m2icl_loss` when every logit is equal (nothing learned), with or
    without labels: each of the ``2 * scales`` cross-entropies is then ``ln B``."""
    return 2 * scales * math.log(batch)


def prototype_loss(audio: torch.Tensor, visual: list[torch.Tensor], prototypes: torch.Tensor,
                   labels: torch.Tensor, tau: float) -> torch.Tensor:
    """Weak-label heads in the shared space: the clip's audio and its image (MIL: best location,
    per scale) must be nearest to their category's prototype.

    Args:
        audio: ``[B, D]`` L2-normalised; visual: per scale ``[B, D, H, W]`` L2-normalised.
        prototypes: ``[C, D]`` (normalised here); labels: ``[B]`` in ``[0, C)``.

    Returns:
        scalar: audio cross-entropy + the visual ones summed over scales; chance ``(1 + S) ln C``.
    """
    protos = F.normalize(prototypes, dim=1)
    total = F.cross_entropy(audio @ protos.t() / tau, labels)
    for v in visual:
        logits = torch.einsum("cd,bdhw->bchw", protos, v).flatten(2).amax(-1) / tau  # [B, C]
        total = total + F.cross_entropy(logits, labels)
    return total
