"""Dense CRF (pydensecrf) turning soft foreground maps into binary masks, in parallel over frames.

The unary is ``unary_from_softmax([1 - p, p])`` (the "probability CRF" of psa / 1-stage /
ToCo, reference notes §4 (a)); Gaussian (sxy, compat) and bilateral (sxy, srgb, compat) kernels;
the mask is ``argmax Q``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avs_core.engine.parallel import ordered_map, resolve_workers


@dataclass(frozen=True)
class CRFSettings:
    iters: int = 10
    gauss_sxy: float = 3.0
    gauss_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0


def settings_from(p) -> CRFSettings:
    """CRFSettings from a params section with the same field names (``avs_core.config.CRFParams``)."""
    return CRFSettings(p.iters, p.gauss_sxy, p.gauss_compat, p.bilateral_sxy, p.bilateral_srgb, p.bilateral_compat)


def crf_binary(image: np.ndarray, prob: np.ndarray, s: CRFSettings) -> np.ndarray:
    """One frame.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        prob: ``[H, W]`` float foreground probability in [0, 1].

    Returns:
        ``[H, W]`` uint8 in {0, 1}.
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    h, w = prob.shape
    sm = np.stack([1.0 - prob, prob]).astype(np.float32)
    d = dcrf.DenseCRF2D(w, h, 2)  # width first
    d.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(sm)))
    d.addPairwiseGaussian(sxy=s.gauss_sxy, compat=s.gauss_compat)
    d.addPairwiseBilateral(sxy=s.bilateral_sxy, srgb=s.bilateral_srgb, rgbim=np.ascontiguousarray(image),
                           compat=s.bilateral_compat)
    q = np.array(d.inference(s.iters)).reshape(2, h, w)
    return q.argmax(0).astype(np.uint8)


def crf_chunk(args: tuple[np.ndarray, np.ndarray, CRFSettings]) -> np.ndarray:
    """``(images [N, H, W, 3] uint8, probs [N, H, W], settings)`` -> ``[N, H, W]`` uint8: one task
    for :func:`~avs_core.engine.parallel.ordered_map` (this module imports no torch, so a worker
    process starts fast)."""
    images, probs, s = args
    return np.stack([crf_binary(i, p, s) for i, p in zip(images, probs)])


def crf_batch(images: np.ndarray, probs: np.ndarray, s: CRFSettings, workers: int = 1) -> np.ndarray:
    """Many frames: ``[N, H, W, 3]`` uint8 and ``[N, H, W]`` -> ``[N, H, W]`` uint8, over ``workers``
    processes (``compute.map_workers``: 0 = one per core, 1 = this process) through
    :func:`~avs_core.engine.parallel.ordered_map`. Output order = input order."""
    workers = resolve_workers(workers)
    if workers == 1 or len(images) < 2:
        return crf_chunk((images, probs, s)) if len(images) else np.zeros(probs.shape, np.uint8)
    parts = np.array_split(np.arange(len(images)), min(workers * 4, len(images)))
    return np.concatenate(list(ordered_map(crf_chunk, ((images[p], probs[p], s) for p in parts), workers)))
