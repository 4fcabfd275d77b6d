"""The chip encoders moved to :mod:`napari_interfaces.nets.encoders`; this path re-exports them."""

from __future__ import annotations

from ..nets.encoders import Bottleneck, ChipEncoder, ResNet50, adapt_resnet_state, resnet50

__all__ = ["Bottleneck", "ResNet50", "resnet50", "ChipEncoder", "adapt_resnet_state"]
