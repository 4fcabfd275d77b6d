"""HED weights moved to :mod:`napari_interfaces.nets.hed_weights`; this old path re-exports it."""

from __future__ import annotations

from ..nets.hed_weights import *  # noqa: F403
from ..nets.hed_weights import __all__  # noqa: F401
