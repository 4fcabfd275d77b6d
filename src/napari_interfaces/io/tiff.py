"""One TIFF writer for images, labels and volumes with their pixel/voxel size.

:func:`write_tiff` writes a 2D image or label image (axes ``YX``) or a 3D
volume (axes ``ZYX``) so that Fiji/ImageJ, napari (through this plugin's
readers) and tifffile all see the physical size:

- ImageJ hyperstack metadata: ``unit`` (``angstrom`` for Å, ``nm``, ...),
  the XY resolution tags hold ``1 / pixel size`` per unit and ``spacing``
  holds the z voxel size;
- the full :class:`~napari_interfaces.core.geometry.Grid` (origin, spacing,
  unit, axes) and free-form metadata as JSON in ImageJ's ``Info`` property
  (the image description for non-ImageJ TIFFs), which
  :func:`read_tiff_grid` reads back exactly.

Data types: floats are stored as float32, booleans as uint8, integer labels
as uint8/uint16 when the values fit (ImageJ has no 32-bit integers) and as
int32 otherwise (then a plain TIFF, still with the resolution tags and the
JSON). Complex arrays (exit waves) are stored as plain complex64 TIFFs.

Every file is written atomically (:func:`napari_interfaces.core.outputs.atomic_file`):
a temporary file beside the destination replaces it only when complete.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.tif"
>>> _ = write_tiff(p, np.array([[0, 1], [2, 0]]), pixel_size=0.2)
>>> g = read_tiff_grid(p)
>>> g.spacing, g.unit, g.axes
((0.2, 0.2), 'Å', 'yx')
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.geometry import Grid
from ..core.outputs import atomic_file
from ..core.units import IMAGEJ_UNITS  # the one unit table (re-exported)

__all__ = ["IMAGEJ_UNITS", "read_tiff_grid", "tiff_dtype", "tiff_grid", "write_tiff"]


def tiff_dtype(data: np.ndarray) -> np.ndarray:
    """``data`` converted to the type it is stored as (see the module docstring)."""
    data = np.asarray(data)
    if np.iscomplexobj(data):
        return data.astype(np.complex64, copy=False)
    if data.dtype == bool:
        return data.astype(np.uint8)
    if data.dtype.kind == "f":
        return data.astype(np.float32, copy=False)
    if data.dtype.kind in "iu" and data.dtype not in (np.uint8, np.uint16):
        lo = int(data.min(initial=0))
        hi = int(data.max(initial=0))
        if lo >= 0 and hi < 256 and data.dtype.itemsize == 1:
            return data.astype(np.uint8)
        if lo >= 0 and hi < 65536:
            return data.astype(np.uint16)
        if np.iinfo(np.int32).min <= lo and hi <= np.iinfo(np.int32).max:
            return data.astype(np.int32)
        raise ValueError(f"label values {lo}..{hi} do not fit in int32")
    return data


def _grid_for(data: np.ndarray, grid: Grid | None, pixel_size, unit: str) -> Grid | None:
    if grid is not None:
        if grid.ndim != data.ndim and not (
            data.ndim == grid.ndim + 1 and data.shape[-1] in (3, 4)
        ):
            raise ValueError(f"array has {data.ndim} dims, grid has {grid.ndim}")
        return grid
    if pixel_size is None:
        return None
    nd = 3 if data.ndim == 3 and data.shape[-1] not in (3, 4) else 2
    if np.ndim(pixel_size) == 0:
        spacing = (float(pixel_size),) * nd
    else:
        spacing = tuple(float(s) for s in pixel_size)
    if len(spacing) != nd:
        raise ValueError(f"pixel_size needs {nd} values for shape {data.shape}")
    return Grid((0.0,) * nd, spacing, unit, "zyx"[-nd:])


def write_tiff(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Grid | None = None,
    *,
    pixel_size: float | tuple[float, ...] | None = None,
    unit: str = "Å",
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write an image, label image or volume as a TIFF with its pixel size (atomically).

    Parameters
    ----------
    path : path-like
        Destination ``.tif``/``.tiff`` (replaced if it exists; callers check
        ``overwrite`` with :func:`~napari_interfaces.core.outputs.check_output`).
    data : array
        ``(ny, nx)``, ``(ny, nx, 3|4)`` (RGB) or ``(nz, ny, nx)``.
    grid : Grid, optional
        The array's geometry (axes ``yx``, ``zyx``, or ``tyx`` for a series of
        frames: ImageJ axes ``TYX``, no z spacing).
    pixel_size : float or tuple, optional
        Instead of ``grid``: one size for all axes, or one per axis, in ``unit``.
    unit : str
        Length unit of ``pixel_size``.
    metadata : dict, optional
        JSON-serialisable extras stored with the grid.

    Returns
    -------
    Path
    """
    import tifffile

    path = Path(path)
    data = tiff_dtype(data)
    g = _grid_for(data, grid, pixel_size, unit)
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4) and (g is None or g.ndim == 2)
    if data.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image or a 3D volume, got shape {data.shape}")
    info = json.dumps({"grid": g.to_dict() if g else None, "metadata": metadata or {}})
    imagej = data.dtype in (np.uint8, np.uint16, np.float32) and not rgb
    kwargs: dict[str, Any] = {}
    # a series' first axis (time, frames: grid axes "tyx") is not a length: ImageJ must
    # not read its step as a z spacing in the image's unit
    series = data.ndim == 3 and g is not None and g.axes[0] == "t"
    ij_meta: dict[str, Any] = {
        "axes": ("TYX" if series else "ZYX") if data.ndim == 3 else "YX",
        "Info": info,
    }
    if g is not None:
        sy, sx = g.spacing[-2:]
        kwargs["resolution"] = (1.0 / sx, 1.0 / sy)
        ij_meta["unit"] = IMAGEJ_UNITS.get(g.unit, g.unit)
        if g.ndim == 3 and not series:
            ij_meta["spacing"] = float(g.spacing[0])
    with atomic_file(path) as tmp:
        if imagej:
            tifffile.imwrite(tmp, data, imagej=True, metadata=ij_meta, **kwargs)
        else:
            tifffile.imwrite(
                tmp,
                data,
                description=info,
                metadata=None,
                photometric="rgb" if rgb else "minisblack",
                **kwargs,
            )
    return path


def read_tiff_grid(path: str | os.PathLike) -> Grid | None:
    """The grid stored by :func:`write_tiff` (``None`` if the file has none)."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        return tiff_grid(tf)


def tiff_grid(tf) -> Grid | None:
    """:func:`read_tiff_grid` for an open ``tifffile.TiffFile``."""
    texts = [(tf.imagej_metadata or {}).get("Info"), tf.pages[0].description if tf.pages else ""]
    for text in texts:
        if not text or not str(text).lstrip().startswith("{"):
            continue
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(d, dict) and isinstance(d.get("grid"), dict):
            try:
                return Grid.from_dict(d["grid"])
            except (KeyError, TypeError, ValueError):
                return None
    return None
