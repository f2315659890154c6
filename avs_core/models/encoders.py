"""Two-stream encoders of WS-AVS / EZ-VSL: multi-scale visual maps and a global audio vector.

Projection: token-wise LayerNorm -> Dropout -> Linear per visual stage (what the WS-AVS code does;
equivalent to a 1x1 conv on channel-normalised features). The LayerNorm puts the four stages,
whose channel counts and magnitudes differ, on one footing before the shared D-dim space.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avs_core.models.backbones import STAGE_CHANNELS, build_resnet, resnet_stages

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TokenProjection(nn.Module):
    """LayerNorm -> Dropout -> Linear over the channels of every location of ``[B, C, H, W]``."""

    def __init__(self, cin: int, dim: int, dropout: float):
        super().__init__()
        self.norm, self.drop, self.proj = nn.LayerNorm(cin), nn.Dropout(dropout), nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # [B, H, W, C]
        return self.proj(self.drop(self.norm(x))).permute(0, 3, 1, 2)  # [B, D, H, W]


def normalize_images(frames_uint8: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` uint8 RGB -> float, ImageNet mean / std."""
    x = frames_uint8.float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


class VisualEncoder(nn.Module):
    """Images ``[B, 3, H, W]`` (normalised) -> 4 L2-normalised maps ``[B, D, H/4 .. H/32]``.

    ``features()`` also returns the raw backbone stages for heads that need them.
    """

    def __init__(self, backbone: str = "resnet18", dim: int = 128, weights: str = "none", dropout: float = 0.0):
        super().__init__()
        self.backbone_name = backbone
        self.net = build_resnet(backbone, weights)
        self.proj = nn.ModuleList(TokenProjection(c, dim, dropout) for c in STAGE_CHANNELS[backbone])

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return resnet_stages(self.net, images)

    def project(self, stages: list[torch.Tensor]) -> list[torch.Tensor]:
        return [F.normalize(p(s), dim=1) for p, s in zip(self.proj, stages)]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.project(self.features(images))


class AudioEncoder(nn.Module):
    """Log spectrograms ``[B, 1, F, T]`` -> L2-normalised ``[B, D]`` (ResNet, global max-pool).

    ``freq_pool`` > 1 averages that many adjacent frequency bins first (``[B, 1, F // k, T]``):
    the ResNet's cost falls about k-fold (at 257 bins the audio side cost more than the visual one).

    ``centre`` ``[D]`` (zero until ``align`` sets it after training, saved with the weights) is taken
    off the embedding by :meth:`query`, the audio side of the coarse maps and of retrieval.
    """

    def __init__(self, backbone: str = "resnet18", dim: int = 128, weights: str = "none", freq_pool: int = 1):
        super().__init__()
        self.freq_pool = freq_pool
        self.net = build_resnet(backbone, weights, in_channels=1)
        cout = STAGE_CHANNELS[backbone][-1]
        self.norm, self.proj = nn.LayerNorm(cout), nn.Linear(cout, dim)
        self.register_buffer("centre", torch.zeros(dim))  # [D]

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if self.freq_pool > 1:
            spec = F.avg_pool2d(spec, (self.freq_pool, 1))  # [B, 1, F // k, T]
        x = resnet_stages(self.net, spec)[-1]  # [B, C, f, t]
        x = torch.amax(x, dim=(2, 3))  # [B, C]
        return F.normalize(self.proj(self.norm(x)), dim=1)

    def query(self, spec: torch.Tensor) -> torch.Tensor:
        """``forward`` minus ``centre``, L2-normalised again: ``[B, 1, F, T] -> [B, D]``."""
        return F.normalize(self(spec) - self.centre, dim=1)
