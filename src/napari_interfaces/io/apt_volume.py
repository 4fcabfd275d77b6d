"""Volumes (label or composition) as TIFF with voxel size and origin.

Written as ImageJ hyperstacks (axes ``ZYX``) so Fiji shows the right voxel
size: the XY resolution tags hold ``1 / voxel size`` per nm, ImageJ's
``spacing`` holds the z voxel size and ``unit`` is ``nm``. The full
:class:`~napari_interfaces.core.geometry.Grid` (origin included) and any
metadata are also stored as JSON in the ``Info`` property, which
:func:`read_volume_tiff` reads back exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.geometry import Grid, GriddedArray
from .apt_errors import AptFormatError

__all__ = ["write_volume_tiff", "read_volume_tiff"]


def write_volume_tiff(
    path: str | os.PathLike, data: np.ndarray, grid: Grid, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a ``(nz, ny, nx)`` volume with its grid (axes zyx).

    Integer label volumes are stored as uint8/uint16/int32 as given; float
    volumes as float32.
    """
    import tifffile

    path = Path(path)
    data = np.asarray(data)
    if data.ndim != 3 or grid.ndim != 3:
        raise ValueError(f"expected a 3D volume with a 3D grid, got {data.shape} and {grid}")
    if data.dtype.kind == "f":
        data = data.astype(np.float32)
    elif data.dtype == np.int64 or data.dtype == np.uint64:
        data = data.astype(np.int32)
    elif data.dtype == bool:
        data = data.astype(np.uint8)
    vz, vy, vx = grid.spacing
    info = json.dumps({"grid": grid.to_dict(), "metadata": metadata or {}})
    tifffile.imwrite(
        path,
        data,
        imagej=data.dtype in (np.uint8, np.uint16, np.float32),
        resolution=(1.0 / vx, 1.0 / vy),
        metadata={"axes": "ZYX", "spacing": vz, "unit": grid.unit, "Info": info},
    )
    return path


def read_volume_tiff(path: str | os.PathLike) -> GriddedArray:
    """Read a volume written by :func:`write_volume_tiff` (or any ImageJ TIFF)."""
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tf:
            data = tf.asarray()
            ij = tf.imagej_metadata or {}
            info = ij.get("Info")
            page = tf.pages[0]
            desc = page.description
    except (tifffile.TiffFileError, ValueError) as exc:
        raise AptFormatError(path, f"not a readable TIFF ({exc})") from None
    grid = None
    meta: dict[str, Any] = {}
    for text in (info, desc):
        if not text:
            continue
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(d, dict) and "grid" in d:
            grid = Grid.from_dict(d["grid"])
            meta = d.get("metadata", {})
            break
    if grid is None:
        vz = float(ij.get("spacing", 1.0))
        grid = Grid((0.0,) * 3, (vz, 1.0, 1.0), ij.get("unit", "nm"), "zyx")
    return GriddedArray(data, grid, meta)
