"""HED moved to :mod:`napari_interfaces.nets.hed`; this old path re-exports it."""

from __future__ import annotations

from ..nets.hed import *  # noqa: F403
from ..nets.hed import __all__  # noqa: F401
