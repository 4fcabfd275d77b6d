"""The APT point cloud: ion positions (nm) and mass-to-charge ratios (Da).

A :class:`PointCloud` holds two arrays that may be read-only memory maps of
the file (``.pos``/``.epos`` are never copied on read): ``xyz`` of shape
``(n, 3)`` with columns **x, y, z** in nm (the instrument's order; volumes
use ``zyx`` array axes, see :mod:`napari_interfaces.apt.voxelize`) and
``mass`` of shape ``(n,)`` in Da. Extra per-ion columns (e.g. the ``.epos``
detector columns or a ``label``) go in ``columns``.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.apt.pointcloud import PointCloud
>>> pc = PointCloud(np.array([[0, 0, 0], [1, 2, 3]], "f4"), np.array([27.0, 28.0], "f4"))
>>> pc.n_ions, pc.bounds()["z"]
(2, (0.0, 3.0))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PointCloud", "CHUNK_IONS"]

#: Ions processed per chunk by chunked engine functions (bounded memory).
CHUNK_IONS = 4_000_000


@dataclass
class PointCloud:
    """Ion positions and mass-to-charge ratios.

    Parameters
    ----------
    xyz : ndarray, shape (n, 3)
        Positions x, y, z in nm. Any float dtype or byte order (memory maps
        of big-endian files are used as they are).
    mass : ndarray, shape (n,)
        Mass-to-charge ratio in Da.
    columns : dict of str to ndarray, optional
        Extra per-ion columns (``.epos``: ``tof``, ``v_dc``, ``v_pulse``,
        ``det_x``, ``det_y``, ``pulses_since_last``, ``ions_per_pulse``;
        labelled clouds: ``label``).
    source : str, optional
        File the cloud was read from.
    metadata : dict, optional
        Free-form (format, header fields, ...).
    records : ndarray, optional
        The ``(n, k >= 4)`` float record array that ``xyz`` (columns 0-2) and
        ``mass`` (column 3) are views of (``.pos``/``.epos`` memory maps);
        lets :meth:`native_chunk` convert whole contiguous records at once.
    """

    xyz: np.ndarray
    mass: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    records: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.xyz.ndim != 2 or self.xyz.shape[1] != 3:
            raise ValueError(f"xyz must have shape (n, 3), got {self.xyz.shape}")
        if self.mass.shape != (self.xyz.shape[0],):
            raise ValueError(f"mass must have shape ({self.xyz.shape[0]},), got {self.mass.shape}")
        for k, v in self.columns.items():
            if len(v) != self.xyz.shape[0]:
                raise ValueError(f"column {k!r} has {len(v)} rows, expected {self.xyz.shape[0]}")

    @property
    def n_ions(self) -> int:
        """Number of ions."""
        return int(self.xyz.shape[0])

    def __len__(self) -> int:
        return self.n_ions

    def chunks(self, chunk_size: int = CHUNK_IONS):
        """Yield ``(start, stop)`` index pairs covering the cloud."""
        n = self.n_ions
        for start in range(0, n, chunk_size):
            yield start, min(n, start + chunk_size)

    def native_chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """``(xyz, mass)`` of ions ``start:stop`` as native-endian float32 arrays.

        Copies only when needed (byte swap of big-endian files, done on whole
        contiguous records, which is several times faster than per column).
        """
        if self.records is not None:
            blk = np.asarray(self.records[start:stop])
            if not blk.dtype.isnative or blk.dtype != np.float32:
                blk = blk.astype(np.float32)
            return blk[:, :3], blk[:, 3]
        xyz = np.asarray(self.xyz[start:stop], dtype=np.float32)
        mass = np.asarray(self.mass[start:stop], dtype=np.float32)
        return xyz, mass

    def native_records(self, start: int, stop: int) -> np.ndarray:
        """Ions ``start:stop`` as a C-contiguous ``(m, 4)`` float32 array x, y, z, m."""
        if self.records is not None:
            blk = np.asarray(self.records[start:stop, :4])
            if blk.dtype != np.float32 or not blk.dtype.isnative or not blk.flags.c_contiguous:
                blk = np.ascontiguousarray(blk, dtype=np.float32)
            return blk
        out = np.empty((stop - start, 4), dtype=np.float32)
        out[:, :3] = self.xyz[start:stop]
        out[:, 3] = self.mass[start:stop]
        return out

    def bounds(self, chunk_size: int = CHUNK_IONS) -> dict[str, tuple[float, float]]:
        """``{"x": (min, max), "y": ..., "z": ...}`` in nm (chunked, bounded memory)."""
        from ._numba import kernels

        if self.n_ions == 0:
            raise ValueError("empty point cloud has no bounds")
        k = kernels()
        lo = np.full(3, np.inf, dtype=np.float32)
        hi = np.full(3, -np.inf, dtype=np.float32)
        for a, b in self.chunks(chunk_size):
            if k is not None:
                k["bounds"](self.native_records(a, b), lo, hi)
                continue
            xyz, _ = self.native_chunk(a, b)
            for i in range(3):
                col = xyz[:, i]
                lo[i] = min(lo[i], col.min())
                hi[i] = max(hi[i], col.max())
        return {ax: (float(lo[i]), float(hi[i])) for i, ax in enumerate("xyz")}

    def mass_range(self, chunk_size: int = CHUNK_IONS) -> tuple[float, float]:
        """``(min, max)`` of the mass-to-charge ratio in Da."""
        if self.n_ions == 0:
            raise ValueError("empty point cloud has no mass range")
        lo, hi = np.inf, -np.inf
        for a, b in self.chunks(chunk_size):
            _, m = self.native_chunk(a, b)
            lo, hi = min(lo, float(m.min())), max(hi, float(m.max()))
        return lo, hi

    def subset(self, index: np.ndarray | slice) -> PointCloud:
        """A new cloud with the selected ions (copied into native float32)."""
        return PointCloud(
            np.ascontiguousarray(self.xyz[index], dtype=np.float32),
            np.ascontiguousarray(self.mass[index], dtype=np.float32),
            {k: np.asarray(v[index]) for k, v in self.columns.items()},
            self.source,
            dict(self.metadata),
        )

    def decimate(self, max_points: int, seed: int = 0) -> tuple[np.ndarray, int]:
        """Indices of at most ``max_points`` ions, evenly random; and the total.

        Returns
        -------
        index : ndarray of int64, sorted
        n_total : int
        """
        n = self.n_ions
        if n <= max_points:
            return np.arange(n, dtype=np.int64), n
        # Stratified: one random ion per stride, so the result is sorted,
        # unique and spread over the whole acquisition, without an n-sized
        # permutation.
        rng = np.random.default_rng(seed)
        step = n / max_points
        idx = (np.arange(max_points) * step + rng.random(max_points) * step).astype(np.int64)
        return np.minimum(idx, n - 1), n
