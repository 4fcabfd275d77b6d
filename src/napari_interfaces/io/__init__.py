"""File formats (no Qt, no napari): APT point clouds, range files, volumes, micrographs.

The public API is exported here, scikit-image style (``lazy_loader.attach``),
and loaded lazily (a name's module is imported on first use). Readers return the engine's data
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

from ..core.lazy import attach

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

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
