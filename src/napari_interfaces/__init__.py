"""napari-interfaces: find interfaces and phases in materials data.

Importing this package is cheap: it imports neither Qt, napari, torch nor
pyopencl. The engine lives in :mod:`napari_interfaces.io`,
:mod:`~napari_interfaces.apt`, :mod:`~napari_interfaces.simulate`,
:mod:`~napari_interfaces.segment` and :mod:`~napari_interfaces.cluster`; the
napari docks live in :mod:`napari_interfaces._widgets`.
"""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("napari-interfaces")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
