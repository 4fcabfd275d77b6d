"""npe2 hooks of the APT interfaces pipeline: save (corrected) phase labels.

The writer keeps the voxel grid (from the layer's ``metadata["grid"]``, or
its scale/translate) and the phase table, so the labels reload with the
right geometry (``io.apt_volume.read_volume_tiff`` or the Interfaces dock's
*Reload saved*).
"""

from __future__ import annotations

import numpy as np

__all__ = ["write_phases"]


def write_phases(path: str, data: np.ndarray, attributes: dict) -> list[str]:
    """Write a 3D phases Labels layer as a TIFF with voxel size and origin."""
    from ..core.geometry import Grid
    from ..core.outputs import atomic_file
    from ..io.apt_volume import write_volume_tiff

    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"expected a 3D labels volume (z, y, x), got shape {data.shape}")
    meta = attributes.get("metadata") or {}
    if "grid" in meta:
        grid = Grid.from_dict(meta["grid"])
    else:
        scale = tuple(float(s) for s in attributes.get("scale", (1.0, 1.0, 1.0)))[-3:]
        translate = tuple(float(t) for t in attributes.get("translate", (0.0, 0.0, 0.0)))[-3:]
        grid = Grid(translate, scale, "nm", "zyx")
    if not path.lower().endswith((".tif", ".tiff")):
        path = path + ".phases.tif"
    info = {
        "layer": attributes.get("name"),
        "apt_source": meta.get("apt_source"),
        "method": meta.get("method"),
        "phases": meta.get("phases"),
    }
    with atomic_file(path) as tmp:  # never a half-written file under the final name
        write_volume_tiff(tmp, data.astype(np.uint16), grid, info)
    return [path]
