"""Straightforward reference formulations that the project's implementations are compared with."""
from __future__ import annotations

import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F


def pamr_per_dilation(image: torch.Tensor, mask: torch.Tensor, iters: int, dilations) -> torch.Tensor:
    """1-stage-wseg structure: replicate pad + conv per dilation for every kernel, every iteration."""
    def kernels(centre: bool):
        ws = []
        if centre:
            w = torch.zeros(1, 1, 3, 3)
            w[0, 0, 1, 1] = 1
            ws.append(w)
        for i in range(9):
            if i == 4:
                continue
            w = torch.zeros(1, 1, 3, 3)
            w[0, 0, i // 3, i % 3] = 1
            ws.append(w)
        return torch.cat(ws)

    def shifted(x, k):
        b, c, h, w = x.shape
        outs = []
        for d in dilations:
            xp = F.pad(x.reshape(b * c, 1, h, w), [d] * 4, mode="replicate")
            outs.append(F.conv2d(xp, k, dilation=d).view(b, c, -1, h, w))
        return torch.cat(outs, 2)

    h, w = image.shape[-2:]
    mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=True)
    ring, full = kernels(False), kernels(True)
    std = shifted(image, full).std(2, keepdim=True)
    x = -(image.unsqueeze(2) - shifted(image, ring)).abs() / (1e-8 + 0.1 * std)
    aff = F.softmax(x.mean(1, keepdim=True), 2)
    for _ in range(iters):
        mask = (shifted(mask, ring) * aff).sum(2)
    return mask


def spectrogram_scipy(wave: np.ndarray, rate: int) -> np.ndarray:
    """EZ-VSL's per-file computation."""
    _, _, s = scipy.signal.spectrogram(wave, rate, nperseg=512, noverlap=274)
    return np.log(s + 1e-7) / 12.0


def val_miou_whole_split(model, data, masks) -> float:
    """``train_seg.val_miou`` before session 17: the whole split upsampled to the masks' size in one
    tensor, then scored at once (its float32 temporaries are each N x H0 x W0). Maps to logits as
    the stage does since session 18 (resized, then thresholded as probabilities), so both score alike."""
    from avs_core.maps import to_logits
    from avs_core.metrics import miou
    from avs_core.pipeline.train_seg import predict

    probs = np.concatenate([p for _, p in predict(model, data)])
    logits = to_logits(probs.reshape(-1, *probs.shape[-2:]), masks.shape[-2:], "prob")
    ann = data.split.annotated.reshape(-1)
    return miou(logits[ann], torch.from_numpy(masks.reshape(-1, *masks.shape[-2:])[ann]).float())
