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
>>> from napari_interfaces.aptmodel.pointcloud import PointCloud
>>> pc = PointCloud(np.array([[0, 0, 0], [1, 2, 3]], "f4"), np.array([27.0, 28.0], "f4"))
>>> pc.n_ions, pc.bounds()["z"]
(2, (0.0, 3.0))
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PointCloud", "CHUNK_IONS", "n_threads"]

#: Ions processed per chunk by chunked engine functions (bounded memory).
CHUNK_IONS = 4_000_000


def n_threads() -> int:
    """Worker threads for chunked passes (``NAPARI_INTERFACES_THREADS``, default: CPUs, max 8)."""
    from ..core.config import env_int

    return env_int("NAPARI_INTERFACES_THREADS", max(1, min(8, os.cpu_count() or 1)))


def _find_mmap(arr: np.ndarray):
    obj = arr
    while obj is not None:
        mm = getattr(obj, "_mmap", None)
        if isinstance(mm, mmap.mmap):
            return mm
        obj = getattr(obj, "base", None)
    return None


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

    def release(self, start: int, stop: int) -> None:
        """Drop the mapped file pages of ions ``start:stop`` from this process.

        Passes over memory-mapped files call this after each chunk, so the
        resident memory stays about one chunk even for 1e8+ ions (the pages
        stay in the OS file cache and come back on the next access).
        """
        rec = self.records
        if rec is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        mm = _find_mmap(rec)
        if mm is None or mm.closed:
            return
        try:
            base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
            lo = rec.ctypes.data + start * rec.strides[0] - base
            hi = rec.ctypes.data + stop * rec.strides[0] - base
            page = mmap.PAGESIZE
            lo = max(0, (lo // page) * page)
            hi = min(len(mm), hi)
            if hi > lo:
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (ValueError, OSError, TypeError):
            pass

    def map_chunks(
        self,
        fn: Callable[[int, int], Any],
        chunk_size: int = CHUNK_IONS,
        progress=None,
        threads: int | None = None,
    ) -> list:
        """``[fn(start, stop) for each chunk]``, on worker threads, releasing pages.

        ``fn`` must be thread-safe (numba kernels release the GIL, numpy
        mostly does). ``progress.advance()`` is called once per chunk (and
        raises :class:`~napari_interfaces.core.progress.Cancelled` to stop).
        """
        chunks = list(self.chunks(chunk_size))
        threads = min(threads or n_threads(), len(chunks)) or 1

        def run(ab):
            out = fn(*ab)
            self.release(*ab)
            return out

        if threads <= 1:
            out = []
            for ab in chunks:
                out.append(run(ab))
                if progress is not None:
                    progress.advance()
            return out
        from concurrent.futures import ThreadPoolExecutor

        results: list = [None] * len(chunks)
        with ThreadPoolExecutor(threads) as pool:
            futures = {pool.submit(run, ab): i for i, ab in enumerate(chunks)}
            try:
                for fut in futures:
                    results[futures[fut]] = fut.result()
                    if progress is not None:
                        progress.advance()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return results

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
        # cache only for read-only memory maps (the data cannot change under us)
        frozen = self.records is not None and not self.records.flags.writeable
        cached = self.metadata.get("_bounds") if frozen else None
        if cached is not None and cached[0] == self.n_ions:
            lo, hi = cached[1], cached[2]
            return {ax: (float(lo[i]), float(hi[i])) for i, ax in enumerate("xyz")}
        k = kernels()

        def one(a: int, b: int):
            lo = np.full(3, np.inf, dtype=np.float32)
            hi = np.full(3, -np.inf, dtype=np.float32)
            if k is not None:
                k["bounds"](self.native_records(a, b), lo, hi)
            else:
                xyz, _ = self.native_chunk(a, b)
                for i in range(3):
                    lo[i], hi[i] = xyz[:, i].min(), xyz[:, i].max()
            return lo, hi

        parts = self.map_chunks(one, chunk_size)
        lo = np.min([p[0] for p in parts], axis=0)
        hi = np.max([p[1] for p in parts], axis=0)
        if frozen:
            self.metadata["_bounds"] = (self.n_ions, lo, hi)
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
