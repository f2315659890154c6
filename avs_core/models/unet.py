"""A small audio-conditioned U-Net: the default segmentation network on CPU budgets.

Shapes for N frames at S x S (S a multiple of 2**(levels-1)): encoder levels ``[N, base*2**i,
S/2**i, S/2**i]``; the frame's audio embedding ``[N, D]`` (from the frozen ``align`` audio
encoder) modulates the bottleneck and every decoder level (FiLM: ``x * (1 + gamma) + beta``),
so the audio decides *which* object the decoder keeps; output logits ``[N, 1, S, S]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FiLM(nn.Module):
    """``x [N, C, H, W]`` modulated by ``a [N, D]``; starts as the identity."""

    def __init__(self, dim: int, channels: int):
        super().__init__()
        self.fc = nn.Linear(dim, 2 * channels)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(a)[..., None, None].chunk(2, dim=1)  # [N, C, 1, 1] each
        return x * (1 + gamma) + beta


class AudioUNet(nn.Module):
    """``forward(images [N, 3, S, S], audio [N, D]) -> {"logits": [N, 1, S, S], "features": [N, C, S/8, S/8]}``.

    ``features`` (the FiLM-ed bottleneck) is what the AVS(ws) baseline pools with the mask.
    """

    def __init__(self, dim: int = 128, base: int = 16, levels: int = 4, in_channels: int = 3):
        super().__init__()
        widths = [base * 2 ** i for i in range(levels)]
        self.feature_channels = widths[-1]
        self.down = nn.ModuleList(_block(cin, cout) for cin, cout in zip([in_channels, *widths[:-1]], widths))
        self.film = nn.ModuleList(FiLM(dim, w) for w in widths)
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in range(levels - 1))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        skips, x = [], images
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.film[-1](skips[-1], audio)  # [N, C_last, S/2**(L-1), ...]
        features = x
        for i in reversed(range(len(self.up))):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.film[i](self.up[i](torch.cat([x, skips[i]], dim=1)), audio)
        return {"logits": self.head(x), "features": features}
