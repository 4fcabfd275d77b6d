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

from ..core.errors import InputError
from ..core.geometry import Grid, GriddedArray
from .apt_errors import AptFormatError

__all__ = ["write_volume_tiff", "read_volume_tiff"]


def write_volume_tiff(
    path: str | os.PathLike, data: np.ndarray, grid: Grid, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a ``(nz, ny, nx)`` volume with its grid (axes zyx), atomically.

    A thin check around :func:`napari_interfaces.io.tiff.write_tiff`, the one
    TIFF writer: integer label volumes are stored as uint8/uint16 when they
    fit (int32 otherwise), float volumes as float32.
    """
    from .tiff import write_tiff

    data = np.asarray(data)
    if data.ndim != 3 or grid.ndim != 3:
        raise ValueError(f"expected a 3D volume with a 3D grid, got {data.shape} and {grid}")
    return write_tiff(path, data, grid, metadata=metadata)


def read_volume_tiff(path: str | os.PathLike) -> GriddedArray:
    """Read a volume written by :func:`write_volume_tiff` (or any 3D ImageJ TIFF).

    Raises
    ------
    AptFormatError
        Not a readable TIFF, not 3D (z, y, x), or a malformed grid.
    SizeLimitError
        The declared size is over the ``max_pixels`` limit (checked before reading).
    """
    import tifffile

    from ..core.limits import check_bytes, check_pixels, check_regular_file

    path = Path(path)
    check_regular_file(path)
    try:
        with tifffile.TiffFile(path) as tf:
            shape = tuple(tf.series[0].shape) if tf.series else ()
            if len(shape) != 3:
                raise AptFormatError(path, f"expected a 3D volume (z, y, x), got shape {shape}")
            n = check_pixels(shape, f"{path.name}: volume")
            if n == 0:
                raise AptFormatError(path, f"empty volume (shape {shape})")
            check_bytes(n * np.dtype(tf.series[0].dtype).itemsize, f"{path.name}: volume")
            data = tf.asarray()
            ij = tf.imagej_metadata or {}
            info = ij.get("Info")
            page = tf.pages[0]
            desc = page.description
    except (tifffile.TiffFileError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise AptFormatError(path, f"not a readable TIFF ({exc})") from None
    except MemoryError:
        raise AptFormatError(path, "not enough memory to decode the volume") from None
    except Exception as exc:  # noqa: BLE001 - codecs (zlib, LZMA...) raise their own kinds
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise AptFormatError(path, f"not a readable TIFF ({reason})") from None
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
            try:
                grid = Grid.from_dict(d["grid"])
            except (KeyError, TypeError, ValueError) as exc:
                raise AptFormatError(path, f"malformed grid in the metadata ({exc})") from None
            meta = d.get("metadata", {}) if isinstance(d.get("metadata"), dict) else {}
            break
    if grid is None:
        try:
            vz = float(ij.get("spacing", 1.0))
        except (TypeError, ValueError):
            vz = 1.0
        grid = Grid((0.0,) * 3, (vz, 1.0, 1.0), str(ij.get("unit", "nm")), "zyx")
    if grid.ndim != 3 or not all(np.isfinite(v) and v > 0 for v in grid.spacing):
        raise AptFormatError(path, f"voxel size must be 3 positive numbers, got {grid.spacing}")
    if data.ndim != 3:
        raise AptFormatError(path, f"expected a 3D volume (z, y, x), got shape {data.shape}")
    return GriddedArray(data, grid, meta)
