"""ResNet-18 / 34 / 50, module for module torchvision's (same parameter names, same construction and
initialisation order, hence the same weights from the same seed, and torchvision checkpoints load).

Why not ``torchvision.models``: importing torchvision imports ``torch._dynamo`` (through
``torchvision.ops.roi_align``), about 3 s in every stage process that builds a backbone, for
nothing we use. torchvision is still what downloads ImageNet weights (``backbones.build_resnet``).
``tests/test_models.py`` checks the equality against torchvision.
"""
from __future__ import annotations

import torch
from torch import nn


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's v1.5: the stride sits on the 3x3 convolution."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


LAYOUTS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
           "resnet50": (Bottleneck, (3, 4, 6, 3))}


def _layer(block: type[nn.Module], cin: int, planes: int, depth: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or cin != planes * block.expansion:  # built before the block, as torchvision
        downsample = nn.Sequential(_conv1x1(cin, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion))
    blocks = [block(cin, planes, stride, downsample)]
    blocks += [block(planes * block.expansion, planes) for _ in range(1, depth)]
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """Input ``[B, 3, H, W]`` float -> logits ``[B, num_classes]``; ``backbones`` uses its stages."""

    def __init__(self, name: str, num_classes: int = 1000):
        super().__init__()
        block, depths = LAYOUTS[name]
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _layer(block, 64, 64, depths[0], 1)
        self.layer2 = _layer(block, 64 * block.expansion, 128, depths[1], 2)
        self.layer3 = _layer(block, 128 * block.expansion, 256, depths[2], 2)
        self.layer4 = _layer(block, 256 * block.expansion, 512, depths[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)  # built even when dropped: same RNG draws
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
