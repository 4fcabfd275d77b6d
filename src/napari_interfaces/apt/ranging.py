"""Moved to :mod:`napari_interfaces.aptmodel.ranging` (the APT data model, below ``io``).

The names stay importable from this old path. To patch one in a test, patch
it in :mod:`napari_interfaces.aptmodel.ranging`, where it is used.
"""

from ..aptmodel.ranging import (
    Composition,
    Range,
    RangeFileWarning,
    RangeOverlapWarning,
    RangeTable,
    composition,
    composition_of_cloud,
    species_counts,
)

__all__ = [
    "Composition",
    "Range",
    "RangeFileWarning",
    "RangeOverlapWarning",
    "RangeTable",
    "composition",
    "composition_of_cloud",
    "species_counts",
]
