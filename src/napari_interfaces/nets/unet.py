"""U-Net with a ResNet-style encoder, in plain torch (no torchvision).

The encoder follows ResNet-18's layout (Ronneberger et al. 2015 for the
U-Net; He et al. 2016 for the residual blocks): a stride-2 stem, then stages
of :class:`BasicBlock` (two 3×3 convolutions with batch norm and an identity
or 1×1 shortcut) at 1/4, 1/8, 1/16 and 1/32 of the input resolution, with
``(2, 2, 2, 2)`` blocks and widths ``w, 2w, 4w, 8w`` (ResNet-18 is
``w = 64``). A light full-resolution stem keeps boundaries sharp. The decoder
upsamples bilinearly, concatenates the skip feature of the same resolution
and applies two 3×3 convolutions.

The network maps a ``(B, in_channels, H, W)`` image to ``(B, n_classes, H, W)``
logits; binary segmentation is ``n_classes=2`` (background, particle). Any
``H, W`` is accepted: the input is reflect-padded to a multiple of
:attr:`UNet.multiple` and the logits are cropped back.

Examples
--------
>>> import torch
>>> from napari_interfaces.nets.unet import UNet, UNetConfig
>>> net = UNet(UNetConfig(width=8, n_classes=3)).eval()
>>> net(torch.zeros(1, 1, 50, 70)).shape
torch.Size([1, 3, 50, 70])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BasicBlock", "UNet", "UNetConfig", "build_unet", "count_parameters"]


@dataclass
class UNetConfig:
    """Architecture of a :class:`UNet` (stored with every model's metadata).

    Parameters
    ----------
    in_channels : int
        Image channels (1 for HRTEM micrographs).
    n_classes : int
        Output classes; 2 for binary (background / foreground).
    width : int
        Channels of the first residual stage; stage ``k`` has ``width * 2**k``.
        ResNet-18 uses 64; the shipped model uses 16 (fast CPU inference).
    blocks : tuple of int
        Residual blocks per stage; ``(2, 2, 2, 2)`` is ResNet-18's layout.
        The network downsamples by ``2 ** (len(blocks) + 1)`` in total.
    """

    in_channels: int = 1
    n_classes: int = 2
    width: int = 16
    blocks: tuple[int, ...] = field(default=(2, 2, 2, 2))

    def __post_init__(self) -> None:
        self.blocks = tuple(int(b) for b in self.blocks)
        if self.in_channels < 1 or self.n_classes < 2:
            raise ValueError("UNetConfig: in_channels must be >= 1 and n_classes >= 2")
        if self.width < 2 or not self.blocks or min(self.blocks) < 1:
            raise ValueError("UNetConfig: width must be >= 2 and every stage needs >= 1 block")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        keys = {"in_channels", "n_classes", "width", "blocks"}
        unknown = set(d) - keys
        if unknown:
            raise ValueError(f"UNetConfig: unknown keys {sorted(unknown)}")
        return cls(**{k: (tuple(v) if k == "blocks" else int(v)) for k, v in d.items()})


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class _Encoder(nn.Module):
    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        w = cfg.width
        c0 = max(w // 2, 4)
        # full resolution (skip 0) and the stride-2 stem (skip 1, 1/2)
        self.stem0 = _conv_bn_relu(cfg.in_channels, c0)
        self.stem1 = nn.Sequential(_conv_bn_relu(c0, w, stride=2), _conv_bn_relu(w, w))
        stages = []
        cin = w
        for k, n in enumerate(cfg.blocks):
            cout = w * 2**k
            layers = [BasicBlock(cin, cout, stride=2)]
            layers += [BasicBlock(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.channels = [c0, w] + [w * 2**k for k in range(len(cfg.blocks))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem0(x)]
        feats.append(self.stem1(feats[-1]))
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


class _UpBlock(nn.Module):
    """Decoder step: 1×1 projection, upsampling ×2, add the skip, 3×3 convs.

    Projecting before upsampling and adding (instead of concatenating) the
    skip keeps the memory traffic at high resolution small: this is what
    makes CPU inference of large micrographs fast.
    """

    def __init__(self, cin: int, cskip: int, cout: int, n_convs: int = 2) -> None:
        super().__init__()
        self.project = nn.Conv2d(cin, cskip, 1, bias=False)
        self.skip_bn = nn.BatchNorm2d(cskip)
        convs = [_conv_bn_relu(cskip, cout)] + [
            _conv_bn_relu(cout, cout) for _ in range(n_convs - 1)
        ]
        self.convs = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(
            self.project(x), size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.convs(self.skip_bn(x + skip))


class UNet(nn.Module):
    """U-Net with a ResNet-style encoder (see the module docstring).

    Parameters
    ----------
    config : UNetConfig, optional
        Architecture; defaults to ``UNetConfig()`` (binary, width 16,
        ResNet-18 block layout).
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or UNetConfig()
        self.encoder = _Encoder(self.config)
        ch = self.encoder.channels
        ups = []
        cin = ch[-1]
        for k, cskip in enumerate(reversed(ch[:-1])):
            # one 3x3 conv at full resolution, two elsewhere
            ups.append(_UpBlock(cin, cskip, cskip, n_convs=1 if k == len(ch) - 2 else 2))
            cin = cskip
        self.decoder = nn.ModuleList(ups)
        self.head = nn.Conv2d(cin, self.config.n_classes, 1)

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this (the total stride)."""
        return 2 ** (len(self.config.blocks) + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        feats = self.encoder(x)
        y = feats[-1]
        for up, skip in zip(self.decoder, reversed(feats[:-1])):
            y = up(y, skip)
        y = self.head(y)
        if ph or pw:
            y = y[..., :h, :w]
        return y


def build_unet(config: UNetConfig | dict[str, Any] | None = None) -> UNet:
    """A :class:`UNet` from a config object or its dict form."""
    if isinstance(config, dict):
        config = UNetConfig.from_dict(config)
    return UNet(config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
