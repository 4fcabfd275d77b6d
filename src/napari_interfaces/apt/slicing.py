"""Slices of composition volumes and point clouds along any axis, with a thickness.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.core.geometry import Grid
>>> from napari_interfaces.apt.slicing import slab
>>> vol = np.arange(24, dtype="f4").reshape(4, 3, 2)     # (z, y, x)
>>> g = Grid((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
>>> img, g2 = slab(vol, g, axis="z", position_nm=1.5, thickness_nm=2.0)
>>> img.tolist(), g2.axes
([[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], 'yx')
"""

from __future__ import annotations

import numpy as np

from ..aptmodel.pointcloud import PointCloud
from ..core.geometry import Grid

__all__ = ["slab", "slab_index_range", "slab_means", "slab_points", "AXES"]

AXES = "zyx"


def _axis(axis: str | int) -> int:
    if isinstance(axis, str):
        if axis not in AXES:
            raise ValueError(f"axis must be one of 'z', 'y', 'x', got {axis!r}")
        return AXES.index(axis)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


def slab_index_range(
    grid: Grid, n: int, axis: str | int, position_nm: float, thickness_nm: float
) -> tuple[int, int]:
    """``(start, stop)`` voxel indices along ``axis`` whose centres lie in the slab.

    The slab is ``[position - t/2, position + t/2)``; at least the voxel
    containing ``position`` is included.
    """
    a = _axis(axis)
    o, s = grid.origin[a], grid.spacing[a]
    centre = int(np.floor((position_nm - (o - s / 2)) / s))
    if thickness_nm <= s:
        start, stop = centre, centre + 1
    else:
        start = int(np.ceil((position_nm - thickness_nm / 2 - o) / s - 1e-9))
        stop = int(np.floor((position_nm + thickness_nm / 2 - o) / s - 1e-9)) + 1
    start, stop = max(0, start), min(n, stop)
    if start >= stop:
        raise ValueError(
            f"slab at {position_nm} nm (thickness {thickness_nm} nm) is outside the "
            f"{AXES[a]} range [{o - s / 2:.3f}, {o + (n - 0.5) * s:.3f}) nm"
        )
    return start, stop


def slab(
    volume: np.ndarray,
    grid: Grid,
    axis: str | int = "z",
    position_nm: float | None = None,
    thickness_nm: float = 1.0,
    reduce: str = "mean",
) -> tuple[np.ndarray, Grid]:
    """A 2D slice of a ``(..., nz, ny, nx)`` volume, averaged (or summed) over a slab.

    Parameters
    ----------
    volume : ndarray
        Last three axes are z, y, x on ``grid``.
    axis : "z", "y" or "x"
        Normal of the slice.
    position_nm : float, optional
        Centre of the slab along ``axis`` (default: middle of the volume).
    thickness_nm : float
        Slab thickness in nm (one voxel when not larger than the voxel size).
    reduce : "mean" or "sum"
        Use ``"sum"`` for counts and ``"mean"`` for composition.

    Returns
    -------
    image : ndarray
        ``volume`` without the sliced axis.
    grid2d : Grid
        Geometry of the image (the two remaining axes).
    """
    a = _axis(axis)
    n = volume.shape[-3 + a]
    if position_nm is None:
        position_nm = grid.origin[a] + grid.spacing[a] * (n - 1) / 2
    start, stop = slab_index_range(grid, n, a, position_nm, thickness_nm)
    ax = volume.ndim - 3 + a
    sub = np.take(volume, np.arange(start, stop), axis=ax)
    if reduce == "mean":
        img = sub.mean(axis=ax, dtype=np.float64).astype(np.float32)
    elif reduce == "sum":
        img = sub.sum(axis=ax, dtype=np.float64).astype(np.float32)
    else:
        raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
    keep = [i for i in range(3) if i != a]
    g2 = Grid(
        tuple(grid.origin[i] for i in keep),
        tuple(grid.spacing[i] for i in keep),
        grid.unit,
        "".join(grid.axes[i] for i in keep),
    )
    return img, g2


def slab_points(
    cloud: PointCloud, axis: str | int, position_nm: float, thickness_nm: float
) -> np.ndarray:
    """Indices of the ions with ``position - t/2 <= coordinate < position + t/2``."""
    a = _axis(axis)
    col = {0: 2, 1: 1, 2: 0}[a]  # zyx axis -> xyz column
    out = []
    lo, hi = position_nm - thickness_nm / 2, position_nm + thickness_nm / 2
    for s, e in cloud.chunks():
        c = cloud.xyz[s:e, col]
        out.append(np.flatnonzero((c >= lo) & (c < hi)) + s)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def slab_means(
    volumes: dict[str, np.ndarray], axis: str | int, width_vox: int, progress=None
) -> dict[str, np.ndarray]:
    """Each volume averaged over a slab of ``width_vox`` voxels along ``axis``.

    Every plane of a result is the mean of the slab centred on it (borders
    reflect), so a viewer shows a slab by slicing one plane (the APT
    explorer runs this off the GUI thread). ``width_vox <= 1`` returns the
    volumes unchanged.

    Examples
    --------
    >>> v = {"a": np.arange(4, dtype="f4").reshape(4, 1, 1)}
    >>> slab_means(v, "z", 2)["a"].ravel().tolist()
    [0.0, 0.5, 1.5, 2.5]
    """
    from scipy.ndimage import uniform_filter1d

    from ..core.progress import as_progress

    a = _axis(axis)
    progress = as_progress(progress)
    progress.start(len(volumes), "slab mean")
    out = {}
    for key, vol in volumes.items():
        out[key] = (
            vol
            if width_vox <= 1
            else uniform_filter1d(vol, int(width_vox), axis=a, mode="reflect")
        )
        progress.advance()
    return out
