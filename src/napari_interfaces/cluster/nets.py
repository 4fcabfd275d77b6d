"""The chip encoders moved to :mod:`napari_interfaces.nets.encoders`; this old path re-exports it."""

from __future__ import annotations

from ..nets.encoders import *  # noqa: F403
from ..nets.encoders import __all__  # noqa: F401
