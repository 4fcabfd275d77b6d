"""Voxelized counts and composition of a ranged point cloud.

:func:`voxelize` bins ions into a regular grid (default voxel 1 nm) and
counts ions per species per voxel, processing the cloud in chunks with
``np.bincount`` so memory stays bounded (the grid plus one chunk) however
many ions there are. Molecular ions are decomposed into atoms for element
counts (one CrO2 gives 1 Cr + 2 O), and composition is at.% of the ranged
atoms in each voxel.

Axes and units
--------------
Volumes are ``(nz, ny, nx)`` arrays (axes ``"zyx"``) with a
:class:`~napari_interfaces.core.geometry.Grid` in nm: voxel ``(k, j, i)``
covers ``[edge + index * size, edge + (index + 1) * size)`` per axis and
``grid.origin`` is the centre of voxel ``(0, 0, 0)``. Point coordinates are
``xyz`` columns; ``zyx = xyz[:, ::-1]``.

Delocalization
--------------
Optional Gaussian smoothing of the count volumes (what AP Suite calls
delocalization, e.g. 3 x 3 x 1.5 nm for x, y, z). As in IVAS/AP Suite and
APAV, the distance ``d`` per axis is **three Gaussian standard deviations**
(``sigma = d / 3``). The filter reflects at the grid borders, so total
counts are conserved exactly (up to float rounding). Unlike AP Suite there
is no first-pass splat of each ion over neighbouring voxels: ions are
binned to their voxel, then the counts are smoothed.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.aptmodel.pointcloud import PointCloud
>>> from napari_interfaces.aptmodel.ranging import Range, RangeTable
>>> from napari_interfaces.apt.voxelize import voxelize
>>> xyz = np.array([[0.5, 0.5, 0.5], [0.6, 0.5, 0.5], [1.5, 0.5, 0.5]], "f4")
>>> cloud = PointCloud(xyz, np.array([27.0, 42.0, 27.0], "f4"))
>>> rt = RangeTable([Range(26.5, 27.5, "Al", {"Al": 1}), Range(41.5, 42.5, "AlO", {"Al": 1, "O": 1})])
>>> vox = voxelize(cloud, rt, voxel_size=1.0)
>>> vox.shape, vox.element_counts("O")[0, 0].tolist()
((1, 1, 2), [1.0, 0.0])
>>> vox.composition("Al")[0, 0].tolist()
[66.66666412353516, 100.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..aptmodel._numba import kernels
from ..aptmodel.pointcloud import CHUNK_IONS, PointCloud, n_threads
from ..aptmodel.ranging import RangeTable
from ..core.geometry import Grid
from ..core.progress import Progress, as_progress
from .volume import CompositionVolume

__all__ = ["VoxelCounts", "voxelize", "grid_for_bounds", "voxel_index", "delocalize"]


def _zyx3(v: float | Sequence[float], name: str) -> tuple[float, float, float]:
    if np.isscalar(v):
        t = (float(v),) * 3  # type: ignore[arg-type]
    else:
        t = tuple(float(x) for x in v)  # type: ignore[union-attr]
        if len(t) != 3:
            raise ValueError(f"{name} must be a number or 3 numbers (z, y, x), got {v!r}")
    return t  # type: ignore[return-value]


def grid_for_bounds(
    bounds: dict[str, tuple[float, float]], voxel_size: float | Sequence[float] = 1.0
) -> tuple[Grid, tuple[int, int, int]]:
    """Grid (axes zyx, nm) whose voxels cover ``bounds`` and the volume shape.

    Voxel edges are aligned to multiples of the voxel size (so two clouds
    voxelized with the same size share voxel boundaries).
    """
    vs = _zyx3(voxel_size, "voxel_size")
    if any(not np.isfinite(v) or v <= 0 for v in vs):
        raise ValueError(f"voxel size must be positive, got {voxel_size!r}")
    origin, shape = [], []
    for ax, s in zip("zyx", vs):
        lo, hi = bounds[ax]
        edge = np.floor(lo / s) * s
        n = int(np.floor((hi - edge) / s)) + 1
        origin.append(float(edge + s / 2))
        shape.append(max(n, 1))
    return Grid(tuple(origin), vs, "nm", "zyx"), tuple(shape)  # type: ignore[arg-type]


def voxel_index(xyz: np.ndarray, grid: Grid, shape: tuple[int, int, int]) -> np.ndarray:
    """Flat C-order voxel index per point (``-1`` outside the grid), int64."""
    n = len(xyz)
    flat = np.zeros(n, dtype=np.int64)
    inside = np.ones(n, dtype=bool)
    for a, col in enumerate((2, 1, 0)):  # z, y, x
        s = grid.spacing[a]
        edge = grid.origin[a] - s / 2
        i = np.floor((np.asarray(xyz[:, col], dtype=np.float64) - edge) * (1.0 / s))
        inside &= (i >= 0) & (i < shape[a])
        flat *= shape[a]
        flat += np.clip(i, 0, shape[a] - 1).astype(np.int64)
    flat[~inside] = -1
    return flat


@dataclass
class VoxelCounts:
    """Ion counts per species on a grid, plus what is needed for composition.

    Attributes
    ----------
    counts : ndarray, float32, shape (n_species, nz, ny, nx)
        Ions of each species per voxel (smoothed when delocalized).
    unranged : ndarray, float32, shape (nz, ny, nx)
        Unranged ions per voxel.
    species, elements : list of str
    decomposition : ndarray, shape (n_species, n_elements)
        Atoms of each element per ion of each species.
    grid : Grid
        Axes ``zyx``, unit nm.
    delocalization_nm : tuple of float or None
        ``(dz, dy, dx)`` used, ``sigma = d / 3``.
    n_outside : int
        Ions outside the grid (only when a grid was given).
    """

    counts: np.ndarray
    unranged: np.ndarray
    species: list[str]
    elements: list[str]
    decomposition: np.ndarray
    grid: Grid
    delocalization_nm: tuple[float, float, float] | None = None
    n_outside: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.unranged.shape)  # type: ignore[return-value]

    def species_counts(self, species: str) -> np.ndarray:
        """Ions of one species per voxel, ``(nz, ny, nx)``."""
        return self.counts[self.species.index(species)]

    def element_counts(self, element: str | None = None) -> np.ndarray:
        """Atoms per voxel of one element ``(nz, ny, nx)``, or of all ``(n_el, nz, ny, nx)``."""
        if element is not None:
            col = self.decomposition[:, self.elements.index(element)]
            out = np.zeros(self.shape, dtype=np.float32)
            for i, w in enumerate(col):
                if w:
                    out += np.float32(w) * self.counts[i]
            return out
        return np.stack([self.element_counts(e) for e in self.elements])

    def total_atoms(self) -> np.ndarray:
        """Ranged atoms per voxel (molecular ions decomposed), ``(nz, ny, nx)``."""
        w = self.decomposition.sum(axis=1)
        out = np.zeros(self.shape, dtype=np.float32)
        for i, wi in enumerate(w):
            out += np.float32(wi) * self.counts[i]
        return out

    def composition(self, element: str | None = None, fill: float = 0.0) -> np.ndarray:
        """at.% of ``element`` per voxel (or all elements, leading axis).

        Voxels without ranged atoms get ``fill`` (0 by default; pass
        ``np.nan`` to mask them).
        """
        total = self.total_atoms()
        empty = total <= 0
        safe = np.where(empty, 1.0, total).astype(np.float32)
        if element is not None:
            c = 100.0 * self.element_counts(element) / safe
            c[empty] = fill
            return c.astype(np.float32)
        return np.stack([self.composition(e, fill) for e in self.elements])

    def total_composition(self):
        """:class:`~napari_interfaces.aptmodel.ranging.Composition` of all ions in the grid.

        Same numbers as :func:`~napari_interfaces.aptmodel.ranging.composition_of_cloud`
        (delocalization conserves counts), without another pass over the ions.
        """
        from ..aptmodel.ranging import Composition

        sp = self.counts.sum(axis=(1, 2, 3), dtype=np.float64)
        el = sp @ self.decomposition if len(sp) else np.zeros(0)
        total = float(el.sum())
        unranged = float(self.unranged.sum(dtype=np.float64))
        return Composition(
            species_counts={s: int(round(sp[i])) for i, s in enumerate(self.species)},
            element_counts={e: float(el[i]) for i, e in enumerate(self.elements)},
            atomic_percent={
                e: (100.0 * float(el[i]) / total if total else 0.0)
                for i, e in enumerate(self.elements)
            },
            n_ions=int(round(sp.sum() + unranged)),
            ranged=int(round(sp.sum())),
            unranged=int(round(unranged)),
        )

    def composition_volume(self, elements: Sequence[str] | None = None):
        """Atoms per element on this grid, as the interface pipeline's
        :class:`~napari_interfaces.apt.volume.CompositionVolume`.

        Parameters
        ----------
        elements : list of str, optional
            Keep only these elements (default: all, in the ranges' order).
        """
        els = list(elements) if elements else list(self.elements)
        missing = [e for e in els if e not in self.elements]
        if missing:
            from ..core.errors import InputError

            raise InputError(f"element(s) {missing} not in the ranges (have {self.elements})")
        counts = np.stack([self.element_counts(e) for e in els]).astype(np.float32)
        return CompositionVolume(counts, els, self.grid)

    def total_ions(self) -> float:
        """All ions counted (ranged + unranged)."""
        return float(self.counts.sum(dtype=np.float64) + self.unranged.sum(dtype=np.float64))


def delocalize(
    volume: np.ndarray, grid: Grid, delocalization_nm: float | Sequence[float]
) -> np.ndarray:
    """Gaussian-smooth a ``(..., nz, ny, nx)`` count volume, conserving the total.

    ``delocalization_nm`` is ``(dz, dy, dx)`` (or one number); ``sigma = d / 3``.
    """
    from scipy.ndimage import gaussian_filter

    d = _zyx3(delocalization_nm, "delocalization")
    sigma = [max(0.0, di / 3.0 / s) for di, s in zip(d, grid.spacing)]
    lead = volume.ndim - 3
    out = np.empty_like(volume, dtype=np.float32)
    for idx in np.ndindex(*volume.shape[:lead]):
        out[idx] = gaussian_filter(
            volume[idx].astype(np.float32), sigma, mode="reflect", truncate=4.0
        )
    return out


def _bin_numpy(xyz, mass, edge0, inv, shape, lookup, n_sp, acc) -> int:
    """numpy version of the kernel (same float64 arithmetic, same result)."""
    nvox = int(np.prod(shape))
    flat = np.zeros(len(xyz), dtype=np.int64)
    inside = np.ones(len(xyz), dtype=bool)
    for a, col in enumerate((2, 1, 0)):
        f = (xyz[:, col].astype(np.float64) - edge0[a]) * inv[a]
        inside &= (f >= 0) & (f < shape[a])
        flat *= shape[a]
        flat += np.clip(f, 0, shape[a] - 1).astype(np.int64)
    edges, interval_species = lookup
    sp = interval_species[np.searchsorted(edges, mass, side="right")].astype(np.int64)
    sp[sp < 0] = n_sp
    flat += sp * nvox
    n_out = int(len(flat) - np.count_nonzero(inside))
    if n_out:
        flat = flat[inside]
    acc += np.bincount(flat, minlength=acc.size)
    return n_out


def _classes(data, ranges: RangeTable | None):
    """``(cloud, (edges, interval_species), species, elements, decomposition)`` of ``data``.

    A :class:`PointCloud` is classified by its ``ranges`` (mass -> species),
    an :class:`~napari_interfaces.apt.dataset.APTDataset` by its own ranges
    unless others are given, and an
    :class:`~napari_interfaces.apt.volume.AtomSet` (molecular ions
    already decomposed) by its element index: then species are elements.
    """
    if hasattr(data, "element") and hasattr(data, "elements"):  # AtomSet
        if ranges is not None:
            raise ValueError("an AtomSet is already ranged: do not pass ranges")
        n_el = len(data.elements)
        # the element index is the "mass": [k - 0.5, k + 0.5) -> class k
        cloud = PointCloud(np.asarray(data.xyz, np.float32), data.element.astype(np.float32))
        edges = np.arange(n_el, dtype=np.float32) + np.float32(0.5)
        interval = np.append(np.arange(n_el), -1).astype(np.int16)
        els = list(data.elements)
        return cloud, (edges, interval), els, els, np.eye(n_el)
    if hasattr(data, "cloud"):  # APTDataset
        ranges = ranges if ranges is not None else data.require_ranges()
        data = data.cloud
    if ranges is None:
        raise ValueError("voxelize needs ranges for a point cloud")
    return (
        data,
        (ranges._edges, ranges._interval_species),
        list(ranges.species),
        list(ranges.elements),
        ranges.decomposition(),
    )


def voxelize(
    cloud,
    ranges: RangeTable | None = None,
    voxel_size: float | Sequence[float] = 1.0,
    delocalization: float | Sequence[float] | None = None,
    grid: tuple[Grid, tuple[int, int, int]] | None = None,
    chunk_size: int | None = None,
    progress: Progress | None = None,
) -> VoxelCounts:
    """Count ions (or atoms) per species per voxel: the one APT voxelizer.

    Parameters
    ----------
    cloud : PointCloud, APTDataset or AtomSet
        Ions with ``ranges``; a dataset (its own ranges unless ``ranges`` is
        given); or decomposed atoms (then "species" are the elements and
        ``ranges`` must be ``None``).
    ranges : RangeTable, optional
    voxel_size : float or (dz, dy, dx)
        Voxel edge in nm (default 1 nm). Voxel edges are aligned to
        multiples of the voxel size (:func:`grid_for_bounds`), so every
        caller voxelizing the same data gets the same grid.
    delocalization : float or (dz, dy, dx), optional
        Gaussian delocalization distance in nm (``sigma = d / 3``), e.g.
        ``(1.5, 3, 3)`` for AP Suite's 3 x 3 x 1.5 nm (x, y, z). Counts are conserved.
    grid : (Grid, shape), optional
        Use this grid instead of one fitted to the cloud bounds; ions
        outside it are dropped and counted in ``n_outside``.
    chunk_size : int, optional
        Ions per chunk (default :data:`~napari_interfaces.aptmodel.pointcloud.CHUNK_IONS`).
    progress : Progress, optional
        Advanced (and checked for cancellation) after every chunk.

    Returns
    -------
    VoxelCounts

    Raises
    ------
    SizeLimitError
        The grid needs more memory than allowed (checked before allocating).
    """
    from ..core.limits import check_bytes

    progress = as_progress(progress)
    cloud, lookup, species, elements, decomposition = _classes(cloud, ranges)
    if cloud.n_ions == 0:
        raise ValueError("cannot voxelize an empty point cloud")
    if grid is None:
        g, shape = grid_for_bounds({k: v for k, v in cloud.bounds().items()}, voxel_size)
    else:
        g, shape = grid
    n_sp = len(species)
    nvox = int(np.prod(shape))
    nbins = nvox * (n_sp + 1)
    if chunk_size is None:
        chunk_size = CHUNK_IONS
    chunks = list(cloud.chunks(chunk_size))
    threads = max(1, min(n_threads(), len(chunks)))
    # int64 accumulator per worker thread + the float32 result (+ a smoothed copy)
    check_bytes(
        nbins * (8 * threads + 4 * (2 if delocalization is not None else 1)),
        f"voxel grid {shape} (z, y, x) x {n_sp + 1} species",
    )
    if nbins > 2**31:
        raise ValueError(
            f"grid {shape} x {n_sp + 1} species is too large ({nbins} bins); "
            "use a larger voxel size"
        )
    progress.start(len(chunks) + (1 if delocalization is not None else 0), "voxelizing")
    edge0 = np.array([g.origin[a] - g.spacing[a] / 2 for a in range(3)], dtype=np.float64)
    inv = np.array([1.0 / s for s in g.spacing], dtype=np.float64)
    shape_arr = np.array(shape, dtype=np.int64)
    k = kernels()
    # one accumulator per worker thread (bounded: threads x grid)
    import threading

    local = threading.local()
    accs: list[np.ndarray] = []
    lock = threading.Lock()

    def my_acc() -> np.ndarray:
        a = getattr(local, "acc", None)
        if a is None:
            a = np.zeros(nbins, dtype=np.int64)
            local.acc = a
            with lock:
                accs.append(a)
        return a

    def one(a: int, b: int) -> int:
        progress.check()  # a cancelled job stops before its next chunk
        acc = my_acc()
        if k is not None:
            return int(
                k["bin"](
                    cloud.native_records(a, b),
                    edge0,
                    inv,
                    shape_arr,
                    lookup[0],
                    lookup[1],
                    n_sp,
                    acc,
                )
            )
        xyz, mass = cloud.native_chunk(a, b)  # native float32, one chunk
        return _bin_numpy(xyz, mass, edge0, inv, shape, lookup, n_sp, acc)

    n_out = int(sum(cloud.map_chunks(one, chunk_size, progress=progress, threads=threads)))
    acc = accs[0]
    for other in accs[1:]:
        acc += other
    accs.clear()
    vol = acc.reshape((n_sp + 1, *shape)).astype(np.float32)
    del acc
    deloc = None
    if delocalization is not None:
        deloc = _zyx3(delocalization, "delocalization")
        vol = delocalize(vol, g, deloc)
        progress.advance()
    return VoxelCounts(
        counts=vol[:n_sp],
        unranged=vol[n_sp],
        species=species,
        elements=elements,
        decomposition=decomposition,
        grid=g,
        delocalization_nm=deloc,
        n_outside=n_out,
    )
