"""File formats (no Qt, no napari): APT point clouds, range files, volumes, micrographs.

The public API is exported here, scikit-image style, and loaded lazily (a
name's module is imported on first use). Readers return the engine's data
model (:class:`napari_interfaces.apt.PointCloud`,
:class:`~napari_interfaces.apt.RangeTable`, ...): ``io`` imports those
types, they never import ``io``.

Examples
--------
>>> import napari_interfaces.io as nio
>>> callable(nio.read_pointcloud) and callable(nio.read_ranges)
True
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> submodule that defines it.
_EXPORTS: dict[str, str] = {
    "AptFormatError": "apt_errors",
    "POINTCLOUD_SUFFIXES": "apt_pointcloud",
    "read_pointcloud": "apt_pointcloud",
    "write_pointcloud": "apt_pointcloud",
    "read_pos": "apt_pointcloud",
    "read_epos": "apt_pointcloud",
    "read_apt": "apt_pointcloud",
    "read_ato": "apt_pointcloud",
    "read_csv": "apt_pointcloud",
    "write_pos": "apt_pointcloud",
    "write_epos": "apt_pointcloud",
    "write_apt": "apt_pointcloud",
    "write_ato": "apt_pointcloud",
    "write_csv": "apt_pointcloud",
    "read_labelled_pointcloud": "apt_labels",
    "write_labelled_pointcloud": "apt_labels",
    "RANGE_SUFFIXES": "ranges",
    "read_ranges": "ranges",
    "read_rrng": "ranges",
    "read_rng": "ranges",
    "read_env": "ranges",
    "write_rrng": "ranges",
    "find_range_file": "ranges",
    "read_volume_tiff": "apt_volume",
    "write_volume_tiff": "apt_volume",
    "MICROGRAPH_SUFFIXES": "micrograph",
    "Micrograph": "micrograph",
    "read_micrograph": "micrograph",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
