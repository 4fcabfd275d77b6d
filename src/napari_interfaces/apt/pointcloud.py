"""Moved to :mod:`napari_interfaces.aptmodel.pointcloud` (the APT data model, below ``io``).

The names stay importable from this old path. To patch one in a test, patch
it in :mod:`napari_interfaces.aptmodel.pointcloud`, where it is used.
"""

from ..aptmodel.pointcloud import CHUNK_IONS, PointCloud, n_threads

__all__ = ["CHUNK_IONS", "PointCloud", "n_threads"]
