"""The U-Net moved to :mod:`napari_interfaces.nets.unet`; this path re-exports it."""

from __future__ import annotations

from ..nets.unet import BasicBlock, UNet, UNetConfig, build_unet, count_parameters

__all__ = ["BasicBlock", "UNet", "UNetConfig", "build_unet", "count_parameters"]
