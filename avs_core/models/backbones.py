"""ResNets (torchvision's, rebuilt in ``resnet.py``) as 4-stage feature extractors, with offline-safe
weight loading."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from avs_core.models.resnet import LAYOUTS, ResNet

log = logging.getLogger(__name__)

STAGE_CHANNELS = {name: tuple(c * block.expansion for c in (64, 128, 256, 512))
                  for name, (block, _) in LAYOUTS.items()}
STAGE_STRIDES = (4, 8, 16, 32)

# torchvision's DEFAULT ImageNet weights (``get_model_weights(name).DEFAULT.url``), fetched the way
# torchvision fetches them, into the same cache ($TORCH_HOME/hub/checkpoints), without torchvision
# installed: its CUDA wheels cost gigabytes and the CPU torch cannot import PyPI's torchvision.
IMAGENET_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",  # IMAGENET1K_V1
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",  # IMAGENET1K_V1
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",  # IMAGENET1K_V2
}


class WeightsError(RuntimeError):
    """Pretrained weights could not be loaded; the message says what to do instead."""


def _state_dict_from_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise WeightsError(f"cannot load {path} as a state dict ({exc}); save one with "
                           "torch.save(model.state_dict(), path)") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return {k.removeprefix("module.").removeprefix("backbone."): v for k, v in obj.items()}


def load_state_dict_checked(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load matching keys; report missing / unexpected / mis-shaped keys by name."""
    own = module.state_dict()
    shaped = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    bad_shape = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    unexpected = sorted(k for k in state if k not in own)
    missing = sorted(k for k in own if k not in state)
    if not shaped:
        raise WeightsError(f"{source}: no key matches the model (e.g. {sorted(state)[:3]}); "
                           f"expected keys like {sorted(own)[:3]}")
    module.load_state_dict(shaped, strict=False)
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", bad_shape)):
        if keys:
            log.warning("%s: %d %s key(s), left as initialised: %s", source, len(keys), what,
                        ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else ""))


def build_resnet(name: str, weights: str, in_channels: int = 3) -> nn.Module:
    """A ResNet (torchvision's layers, names and initialisation) without avgpool / fc.

    Args:
        name: ``resnet18`` | ``resnet34`` | ``resnet50``.
        weights: ``none`` (random init), ``imagenet`` (torchvision's weights and cache,
            ``$TORCH_HOME``) or a path to a local state dict (``.pth`` / ``.pt``).
        in_channels: 3 for images; 1 for spectrograms (ImageNet conv1 weights are averaged over RGB,
            as WS-AVS does).
    """
    if name not in STAGE_CHANNELS:
        raise ValueError(f"unknown backbone {name!r}")
    net = ResNet(name)
    if weights == "imagenet":
        try:  # check_hash: the file name carries the first digits of its SHA-256
            state = torch.hub.load_state_dict_from_url(IMAGENET_URLS[name], progress=False, check_hash=True)
        except Exception as exc:  # noqa: BLE001 - offline, proxy, corrupt download ...
            raise WeightsError(f"could not get the ImageNet weights for {name} ({exc.__class__.__name__}: "
                               f"{exc}). Offline? Pass a local checkpoint path instead, e.g. "
                               f"-S alignment.visual_weights=/path/{name}.pth, or use 'none'") from None
        net.load_state_dict(state)
    elif weights != "none":
        load_state_dict_checked(net, _state_dict_from_file(Path(weights)), str(weights))
    if in_channels != 3:
        old = net.conv1
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        if weights != "none":
            with torch.no_grad():
                net.conv1.weight.copy_(old.weight.mean(dim=1, keepdim=True).expand_as(net.conv1.weight))
    net.avgpool, net.fc = nn.Identity(), nn.Identity()
    return net


def resnet_stages(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The 4 stage outputs ``[B, C_s, H/4, W/4] ... [B, C_s, H/32, W/32]``."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    out = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = layer(x)
        out.append(x)
    return out
