"""Networks of the pseudo-mask stages: C^2AM head, CAM classifier, saliency net, affinity net.

Each takes a 4-stage ResNet (``build_backbone``), initialised from the ``align`` stage's visual
encoder by default: the audio-visual contrastive pretraining stands in for CCAM's MoCo / ImageNet
initialisation, which cannot be downloaded offline.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avs_core.engine.distributed import mean_over_processes
from avs_core.models.backbones import (
    STAGE_CHANNELS,
    build_resnet,
    load_state_dict_checked,
    resnet_stages,
)

def build_backbone(init: str, align_checkpoint: Path, backbone: str = "resnet18"):
    """``(resnet, backbone_name)``. ``init``: ``align`` (the visual encoder in ``align_checkpoint``,
    ``paths.align_model``) | ``none`` | ``imagenet`` | state-dict path."""
    if init != "align":
        return build_resnet(backbone, init), backbone
    from avs_core.engine.checkpoint import load

    ckpt = load(align_checkpoint)
    name = ckpt["params"]["backbone"]
    net = build_resnet(name, "none")
    state = {k.removeprefix("net."): v for k, v in ckpt["visual"].items() if k.startswith("net.")}
    load_state_dict_checked(net, state, str(align_checkpoint))
    return net, name


def _upsample_cat(stages: list[torch.Tensor], size) -> torch.Tensor:
    return torch.cat([F.interpolate(s, size=size, mode="bilinear", align_corners=False)
                      if s.shape[-2:] != size else s for s in stages], dim=1)


class C2AMNet(nn.Module):
    """Backbone + class-agnostic activation head (conv 3x3 -> BN -> sigmoid).

    The head reads the ResNet ``stages`` (1-4) at stride 8: stage 1 average-pooled, stages 3-4
    upsampled bilinearly, concatenated. CCAM concatenates layer3 and layer4 of a stride-16 ResNet-50
    (ImageNet or MoCo weights); this project's backbones, trained from scratch by ``align``, keep
    the objects' colour and texture in stages 1-2 and little of them deeper (``c2am.feature_stages``;
    docs/BENCHMARKS.md, session 23). ``forward(x [N, 3, H, W]) -> (P [N, 1, H/8, W/8] in (0, 1),
    feats [N, C, H/8, W/8])``.

    ``frozen``: the backbone is not trained (and keeps its BatchNorm statistics); only the head is.
    ``centre``: each location's mean feature over the (global) batch (in eval: its running mean,
    momentum 0.1 as BatchNorm's) is subtracted before the head and the fg / bg pooling, so that what every
    frame has at a location (the zero padding's position code) cannot be the fg / bg split.

    Why: without both, C2AM on this project's backbones (trained from scratch by ``align``; no
    ImageNet weights) split the frame by position (top vs bottom) on every style, objectness
    0.07-0.27; with them it segments the objects (docs/BENCHMARKS.md, session 21).
    """

    def __init__(self, net: nn.Module, backbone: str, grid: int, stages: tuple[int, ...], frozen: bool = False,
                 centre: bool = False, input_scale: int = 1):
        super().__init__()
        self.net, self.frozen, self.centre, self.stages = net, frozen, centre, tuple(stages)
        self.input_scale = input_scale
        net.requires_grad_(not frozen)
        if frozen:
            net.eval()  # from the start, so that features computed before training keep its BatchNorm statistics
        cin = sum(STAGE_CHANNELS[backbone][s - 1] for s in self.stages)
        self.head = nn.Conv2d(cin, 1, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(1)
        self.register_buffer("location_mean", torch.zeros(1, cin, grid, grid))  # [1, C, h, w]
        self.register_buffer("location_batches", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.net.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's ``stages`` at stride 8 of the input upsampled ``input_scale`` times:
        ``[N, 3, H, W] -> [N, C, k H/8, k W/8]`` (uncentred)."""
        if self.input_scale != 1:
            x = F.interpolate(x, scale_factor=self.input_scale, mode="bilinear", align_corners=False)  # [N, 3, kH, kW]
        s = resnet_stages(self.net, x)  # strides 4, 8, 16, 32
        picked = [F.avg_pool2d(s[0], 2) if i == 1 else s[i - 1] for i in self.stages]
        return _upsample_cat(picked, s[1].shape[-2:])

    def forward(self, x: torch.Tensor, from_features: bool = False):
        """``x``: images ``[N, 3, H, W]``, or with ``from_features`` what :meth:`features` made of
        them (a frozen backbone's features can be computed once and reused every epoch)."""
        feats = x if from_features else self.features(x)  # [N, C, H/8, W/8]
        if self.centre:
            if self.training:
                with torch.no_grad():  # a constant to the gradient, as a running statistic
                    # the global batch's mean (equal local batches) [1, C, h, w]
                    mean = mean_over_processes(feats.mean(0, keepdim=True))
                    # the first batch sets the running mean, so that a short run has a fair one
                    self.location_mean.lerp_(mean, 0.1 if self.location_batches else 1.0)
                    self.location_batches += 1
            else:
                mean = self.location_mean
            feats = feats - mean
        return torch.sigmoid(self.bn(self.head(feats))), feats


def c2am_pool(p: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CCAM pooling: fg = sum_i P_i f_i / HW, bg = sum_i (1 - P_i) f_i / HW -> ``[N, C]`` each."""
    hw = p.shape[-1] * p.shape[-2]
    p = p.flatten(2)  # [N, 1, HW]
    f = feats.flatten(2).transpose(1, 2)  # [N, HW, C]
    return (p @ f).squeeze(1) / hw, ((1 - p) @ f).squeeze(1) / hw


def border_mean(p: torch.Tensor, width: int = 4) -> float:
    """CCAM ``check_positive``: mean activation of the 4-pixel border strips (> 0.5: the map is background)."""
    w = min(width, p.shape[-1] // 2, p.shape[-2] // 2) or 1
    strips = (p[:, 0, :w, :].mean(), p[:, 0, :, :w].mean(), p[:, 0, -w:, :].mean(), p[:, 0, :, -w:].mean())
    return float(sum(strips) / 4)


class FPNHead(nn.Module):
    """Light top-down decoder over the 4 stages -> ``[N, out, H/4, W/4]``."""

    def __init__(self, backbone: str, width: int, out: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in STAGE_CHANNELS[backbone])
        self.smooth = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                    nn.Conv2d(width, out, 1))

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[3](stages[3])
        for i in (2, 1, 0):
            x = F.interpolate(x, size=stages[i].shape[-2:], mode="bilinear", align_corners=False) + self.lateral[i](stages[i])
        return self.smooth(x)


class SaliencyNet(nn.Module):
    """Salient-object detector: backbone + FPN head -> 1-channel logits at the input size."""

    def __init__(self, net: nn.Module, backbone: str, width: int = 64):
        super().__init__()
        self.net, self.head = net, FPNHead(backbone, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(resnet_stages(self.net, x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # [N, 1, H, W]


class AffinityNet(nn.Module):
    """USPL PMV-aff: multi-scale features -> per-stage 1x1 conv + ELU, concatenated on the
    affinity grid, then a 1x1 MLP -> ``F_aff [N, dim, g, g]``."""

    def __init__(self, net: nn.Module, backbone: str, dim: int = 64, width: int = 64):
        super().__init__()
        self.net = net
        self.reduce = nn.ModuleList(nn.Sequential(nn.Conv2d(c, width, 1), nn.ELU()) for c in STAGE_CHANNELS[backbone])
        self.mlp = nn.Sequential(nn.Conv2d(4 * width, 4 * width, 1), nn.ELU(), nn.Conv2d(4 * width, dim, 1))

    def forward(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        stages = resnet_stages(self.net, x)
        feats = _upsample_cat([r(s) for r, s in zip(self.reduce, stages)], (grid, grid))
        return self.mlp(feats)
