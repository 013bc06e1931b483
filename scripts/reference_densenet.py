"""A PyTorch DenseNet laid out exactly like torchvision's, plus the paper's CIFAR variants.

torchvision's own DenseNet only has the ImageNet stem and bottleneck layers, and the
torchvision wheel on our pip index does not import next to the torch we pin, so this file
rebuilds the model from plain torch.nn. Module names (hence state_dict keys) are
torchvision's, so these weights and a real torchvision checkpoint load the same way:

    features.conv0, features.norm0, features.pool0            (norm0/pool0: ImageNet stem only)
    features.denseblock{b}.denselayer{i}.{norm1,conv1,norm2,conv2}   (norm2/conv2: bottleneck only)
    features.transition{b}.{norm,conv}, features.norm5, classifier

Used by scripts/make-reference-fixtures.py; see docs/densenet.md for the architecture.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DenseNetConfig:
    growth_rate: int
    block_layers: tuple[int, ...]
    bottleneck: bool
    compression: float  # θ: a transition maps m channels to ⌊θ·m⌋
    stem: str  # 'imagenet' or 'cifar'
    stem_channels: int
    input_size: int
    input_channels: int
    num_classes: int
    bn_size: int = 4  # bottleneck width as a multiple of k
    bn_eps: float = 1e-5

    def as_ts_config(self) -> dict:
        """The same config in the shape of our TypeScript DenseNetConfig (src/densenet/config.ts)."""
        return {
            "growthRate": self.growth_rate,
            "blockLayers": list(self.block_layers),
            "bottleneck": self.bottleneck,
            "bottleneckWidth": self.bn_size,
            "compression": self.compression,
            "dropRate": 0,
            "stem": self.stem,
            "stemChannels": self.stem_channels,
            "inputHeight": self.input_size,
            "inputWidth": self.input_size,
            "inputChannels": self.input_channels,
            "numClasses": self.num_classes,
            "bnEpsilon": self.bn_eps,
        }

    @staticmethod
    def from_ts_config(c: dict) -> "DenseNetConfig":
        """The inverse of as_ts_config (square inputs only: this model has one input_size)."""
        if c["inputHeight"] != c["inputWidth"]:
            raise SystemExit("reference_densenet: only square inputs are supported")
        return DenseNetConfig(
            growth_rate=c["growthRate"], block_layers=tuple(c["blockLayers"]), bottleneck=c["bottleneck"],
            compression=c["compression"], stem=c["stem"], stem_channels=c["stemChannels"],
            input_size=c["inputHeight"], input_channels=c["inputChannels"], num_classes=c["numClasses"],
            bn_size=c["bottleneckWidth"], bn_eps=c["bnEpsilon"],
        )


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    # DenseNet convs never have a bias: every one is followed (eventually) by a BN.
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)


class _DenseLayer(nn.Sequential):
    """BN-ReLU-Conv3×3, or with a bottleneck BN-ReLU-Conv1×1-BN-ReLU-Conv3×3.

    Takes the concatenation of all earlier feature maps and returns only the k new ones;
    the block does the concatenating.
    """

    def __init__(self, cin: int, cfg: DenseNetConfig):
        super().__init__()
        k, eps = cfg.growth_rate, cfg.bn_eps
        self.norm1 = nn.BatchNorm2d(cin, eps=eps)
        self.relu1 = nn.ReLU()
        if cfg.bottleneck:
            width = cfg.bn_size * k
            self.conv1 = _conv(cin, width, 1)
            self.norm2 = nn.BatchNorm2d(width, eps=eps)
            self.relu2 = nn.ReLU()
            self.conv2 = _conv(width, k, 3, padding=1)
        else:
            # Plain DenseNet: the only conv is the 3×3, and it keeps torchvision's first slot name.
            self.conv1 = _conv(cin, k, 3, padding=1)


class _DenseBlock(nn.Module):
    def __init__(self, num_layers: int, cin: int, cfg: DenseNetConfig):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(cin + i * cfg.growth_rate, cfg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class _Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int, eps: float):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin, eps=eps)
        self.relu = nn.ReLU()
        self.conv = _conv(cin, cout, 1)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(self, cfg: DenseNetConfig):
        super().__init__()
        eps = cfg.bn_eps
        if cfg.stem == "imagenet":
            stem = [
                ("conv0", _conv(cfg.input_channels, cfg.stem_channels, 7, stride=2, padding=3)),
                ("norm0", nn.BatchNorm2d(cfg.stem_channels, eps=eps)),
                ("relu0", nn.ReLU()),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        elif cfg.stem == "cifar":
            # The paper's CIFAR nets feed the first conv straight into block 1; the first BN
            # is the norm1 of the first dense layer.
            stem = [("conv0", _conv(cfg.input_channels, cfg.stem_channels, 3, padding=1))]
        else:
            raise ValueError(f"unknown stem {cfg.stem!r}")
        self.features = nn.Sequential(OrderedDict(stem))

        channels = cfg.stem_channels
        for b, num_layers in enumerate(cfg.block_layers, start=1):
            self.features.add_module(f"denseblock{b}", _DenseBlock(num_layers, channels, cfg))
            channels += num_layers * cfg.growth_rate
            if b < len(cfg.block_layers):
                out = math.floor(cfg.compression * channels)
                self.features.add_module(f"transition{b}", _Transition(channels, out, eps))
                channels = out
        self.features.add_module("norm5", nn.BatchNorm2d(channels, eps=eps))
        self.classifier = nn.Linear(channels, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)
