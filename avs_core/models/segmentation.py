"""The AVSBench baseline segmentation network, with TPAVI or USPL SPS fusion.

Shapes for B videos of T frames at S x S: the encoder gives 4 stages ``[B*T, C_s, S/4 .. S/32]``;
each goes through the AVSBench "ASPP" (sum of four dilated 3x3 convs, no BN / ReLU) to ``width``
channels; audio-visual fusion; a RefineNet-style decoder of ``FeatureFusionBlock``s; and an output
head to 1-channel logits ``[B*T, 1, S, S]``.

Fusion (``seg.fusion``):

* ``tpavi`` (AVSBench / WS-AVS Eq. 1): z = x + W_z(theta(x) phi(a)^T g(x) / (T H W)), then LayerNorm.
  phi(a) is constant over space, so the product collapses to
  y_p = (1/T) sum_t (theta_p . phi_t) mean_hw g_t: O(T H W C) instead of the (THW)^2 attention
  matrix (:func:`tpavi_dense` keeps the reference form for tests and benchmarks).
* ``coarse_map`` (USPL Eq. 9): F_av = F_v + F_v * minmax(M_crs), with M_crs the cosine map of the
  frame's audio embedding and the stage's projected visual features (the alignment encoders).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avs_core.maps import minmax
from avs_core.models.backbones import STAGE_CHANNELS, resnet_stages
from avs_core.models.encoders import AudioEncoder, VisualEncoder


class ASPP(nn.Module):
    """AVSBench ``Classifier_Module``: sum of 3x3 convs with dilation = padding in {3, 6, 12, 18}."""

    def __init__(self, cin: int, cout: int, dilations=(3, 6, 12, 18)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=d, dilation=d) for d in dilations)
        for c in self.convs:
            nn.init.normal_(c.weight, 0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(c(x) for c in self.convs)


class TPAVI(nn.Module):
    """Temporal pixel-wise audio-visual interaction (``mode='dot'``), cheap exact form."""

    def __init__(self, channels: int, frames: int):
        super().__init__()
        inter = channels // 2
        self.frames = frames
        self.theta = nn.Conv3d(channels, inter, 1)
        self.phi = nn.Conv3d(channels, inter, 1)
        self.g = nn.Conv3d(channels, inter, 1)
        self.w_z = nn.Sequential(nn.Conv3d(inter, channels, 1), nn.BatchNorm3d(channels))
        nn.init.zeros_(self.w_z[1].weight)  # the block starts as the identity, as in AVSBench
        nn.init.zeros_(self.w_z[1].bias)
        self.norm = nn.LayerNorm(channels)

    def _split(self, x: torch.Tensor, audio: torch.Tensor):
        bt, c, h, w = x.shape
        x5 = x.view(-1, self.frames, c, h, w).permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]
        a5 = audio.view(-1, self.frames, c).permute(0, 2, 1)[..., None, None]  # [B, C, T, 1, 1]
        return x5, a5

    def _out(self, x5: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.w_z(y) + x5  # [B, C, T, H, W]
        z = self.norm(z.permute(0, 2, 3, 4, 1))  # [B, T, H, W, C]
        return z.flatten(0, 1).permute(0, 3, 1, 2).contiguous()  # [B*T, C, H, W]

    def forward(self, x: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """x ``[B*T, C, H, W]``, audio ``[B*T, C]`` -> ``[B*T, C, H, W]``."""
        x5, a5 = self._split(x, audio)
        theta = self.theta(x5)  # [B, C', T, H, W]
        phi = self.phi(a5)[..., 0, 0]  # [B, C', T]
        g_mean = self.g(x5).mean(dim=(3, 4))  # [B, C', T]
        t = x5.shape[2]
        weights = torch.einsum("bcthw,bcs->bthws", theta, phi) / t  # (theta_p . phi_s) / T
        y = torch.einsum("bthws,bcs->bcthw", weights, g_mean)
        return self._out(x5, y)


def tpavi_dense(module: TPAVI, x: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """The reference computation: materialise f = theta(x)^T phi(a) / N of size (THW) x (THW)."""
    x5, a5 = module._split(x, audio)
    b, c, t, h, w = x5.shape
    theta = module.theta(x5).flatten(2).transpose(1, 2)  # [B, N, C']
    phi = module.phi(a5.expand(-1, -1, -1, h, w)).flatten(2)  # [B, C', N]
    g = module.g(x5).flatten(2).transpose(1, 2)  # [B, N, C']
    f = theta @ phi / (t * h * w)  # [B, N, N]
    y = (f @ g).transpose(1, 2).reshape(b, -1, t, h, w)
    return module._out(x5, y)


class ResidualConvUnit(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # AVSBench applies an in-place ReLU to the input first, so the skip adds relu(x); kept explicit here
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FusionBlock(nn.Module):
    """``out = up2(RCU2(x + RCU1(skip)))`` (bilinear, align_corners=True)."""

    def __init__(self, c: int):
        super().__init__()
        self.rcu1, self.rcu2 = ResidualConvUnit(c), ResidualConvUnit(c)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.rcu1(skip)
        x = self.rcu2(x)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class AVSegmenter(nn.Module):
    """Audio-visual segmentation network.

    ``forward(images [B*T, 3, S, S], spec [B*T, 1, F, Tt]) -> dict`` with ``logits [B*T, 1, S, S]``,
    ``audio [B*T, D]``, ``visual`` (the 4 L2-normalised alignment maps) for the L_avf term and
    ``features`` (the last of them, ``feature_channels`` = D) for the AVS(ws) pooling.
    """

    def __init__(self, backbone: str = "resnet18", dim: int = 128, width: int = 64, frames: int = 5,
                 fusion: str = "tpavi", tpavi_stages=(0, 1, 2, 3), audio_freq_pool: int = 1):
        super().__init__()
        self.fusion, self.tpavi_stages = fusion, tuple(tpavi_stages)
        self.feature_channels = dim
        self.visual = VisualEncoder(backbone, dim)
        self.audio = AudioEncoder(backbone, dim, freq_pool=audio_freq_pool)
        self.aspp = nn.ModuleList(ASPP(c, width) for c in STAGE_CHANNELS[backbone])
        self.audio_proj = nn.Linear(dim, width)
        self.tpavi = nn.ModuleList(TPAVI(width, frames) for _ in self.tpavi_stages)
        self.blocks = nn.ModuleList(FusionBlock(width) for _ in range(4))
        self.head = nn.Sequential(nn.Conv2d(width, width // 2, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width // 2, 1, 1))

    def forward(self, images: torch.Tensor, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        stages = resnet_stages(self.visual.net, images)
        visual = self.visual.project(stages)
        audio = self.audio(spec)  # [N, D]
        feats = [aspp(s) for aspp, s in zip(self.aspp, stages)]
        if self.fusion == "tpavi":
            a = self.audio_proj(audio)
            for module, i in zip(self.tpavi, self.tpavi_stages):
                feats[i] = module(feats[i], a)
        else:
            for i, v in enumerate(visual):
                coarse = torch.einsum("nd,ndhw->nhw", audio, v)  # USPL Eq. 1
                feats[i] = feats[i] + feats[i] * minmax(coarse).unsqueeze(1)  # USPL Eq. 9
        x = self.blocks[3](feats[3])
        for i in (2, 1, 0):
            x = self.blocks[i](x, F.interpolate(feats[i], size=x.shape[-2:], mode="bilinear", align_corners=False)
                               if feats[i].shape[-2:] != x.shape[-2:] else feats[i])
        logits = F.interpolate(self.head(x), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return {"logits": logits, "audio": audio, "visual": visual, "features": visual[-1]}
