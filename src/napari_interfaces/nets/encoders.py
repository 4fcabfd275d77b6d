"""Torch networks for chip embeddings (imported only when used).

* :func:`resnet50` -- ResNet-50 (v1.5, torchvision's layout) written in plain
  torch, so a torchvision state dict (ImageNet) or a MicroNet encoder
  (nasa/pretrained-microscopy-models) loads with ``load_state_dict``.
* :class:`ChipEncoder` -- the small encoder of the ``learned`` extractor,
  trained self-supervised by ``scripts/train_learned_encoder.py``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Bottleneck", "ResNet50", "resnet50", "ChipEncoder", "adapt_resnet_state"]


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 with torchvision's module names; :meth:`embed` gives 2048-d features."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled ``(B, 2048)`` features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


def resnet50() -> ResNet50:
    """A randomly initialized :class:`ResNet50` (torchvision's initialization)."""
    m = ResNet50()
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)
    return m


_PREFIXES = ("module.", "encoder.", "model.", "backbone.")


def adapt_resnet_state(state: dict) -> dict:
    """Strip wrapper prefixes (``module.``, ``encoder.``, ...) and a ``state_dict`` nesting.

    MicroNet encoders saved by segmentation_models_pytorch have torchvision
    names without ``fc``; that is accepted.
    """
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for k, v in state.items():
        for p in _PREFIXES:
            if k.startswith(p):
                k = k[len(p) :]
                break
        out[k] = v
    return out


class ChipEncoder(nn.Module):
    """Small CNN: ``(B, 1, S, S)`` chip -> ``(B, dim)`` embedding.

    Four stride-2 convolution blocks then mean + standard-deviation pooling
    (texture statistics), a linear layer, and an L2-normalized output.
    """

    def __init__(self, dim: int = 32, width: int = 16) -> None:
        super().__init__()
        w = width
        self.dim = dim
        self.width = width
        chans = [1, w, 2 * w, 4 * w, 4 * w]
        blocks = []
        for i in range(4):
            blocks += [
                nn.Conv2d(
                    chans[i], chans[i + 1], 3, stride=2 if i < 3 else 1, padding=1, bias=False
                ),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(2 * chans[-1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)
        pooled = torch.cat([f.mean((2, 3)), f.std((2, 3))], 1)
        return nn.functional.normalize(self.head(pooled), dim=1)
