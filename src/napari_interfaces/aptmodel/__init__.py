"""The APT data model (no Qt, no napari): point clouds, ranges, elements and their kernels.

The bottom layer of everything APT: it imports only :mod:`napari_interfaces.core`.
The file formats (:mod:`napari_interfaces.io`) return these types and the
engine (:mod:`napari_interfaces.apt`) computes on them; neither is imported
here. :mod:`napari_interfaces.apt` re-exports the public names, and the old
module paths (``napari_interfaces.aptmodel.pointcloud``, ``.ranging``,
``.elements``) name these same modules.

Examples
--------
>>> import napari_interfaces.aptmodel as model
>>> model.RangeTable.__name__, model.parse_formula("CrO2")
('RangeTable', {'Cr': 1, 'O': 2})
"""

from __future__ import annotations

from ..core.lazy import attach

#: Public name -> submodule that defines it.
_EXPORTS: dict[str, str] = {
    "PointCloud": "pointcloud",
    "CHUNK_IONS": "pointcloud",
    "Range": "ranging",
    "RangeTable": "ranging",
    "RangeOverlapWarning": "ranging",
    "RangeFileWarning": "ranging",
    "Composition": "ranging",
    "composition": "ranging",
    "composition_of_cloud": "ranging",
    "species_counts": "ranging",
    "parse_formula": "elements",
    "formula": "elements",
    "is_element": "elements",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
