"""The U-Net moved to :mod:`napari_interfaces.nets.unet`; this old path re-exports it."""

from __future__ import annotations

from ..nets.unet import *  # noqa: F403
from ..nets.unet import __all__  # noqa: F401
