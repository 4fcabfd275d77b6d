"""Data passed between the APT interface steps, and the one-call pipeline.

:class:`AtomSet` holds atoms (molecular ions already decomposed: one CrO2 ion
is one Cr and two O atoms at the ion's position) as positions in nm and an
element index. :class:`CompositionVolume` holds per-element atom counts on a
voxel grid (:class:`~napari_interfaces.core.geometry.Grid`, axes ``zyx``).
:func:`find_interfaces` runs voxel compositions -> method (HED, iso, GMM)
-> phases, and :func:`analyse` adds the proxigram.

Volumes come from the one voxelizer,
:func:`napari_interfaces.apt.voxelize.voxelize` (``VoxelCounts.composition_volume``;
:func:`volume_from_atoms` for atoms), so the Explorer and the Interfaces
dock show a dataset on the same grid; :func:`atoms_from_cloud` decomposes
the ranged ions into the atoms that proxigrams count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.geometry import Grid
from ..core.progress import Progress, as_progress
from .volume import AtomSet, CompositionVolume, InterfaceResult

__all__ = [
    "AtomSet",
    "CompositionVolume",
    "InterfaceResult",
    "METHODS",
    "analyse",
    "atoms_from_cloud",
    "find_interfaces",
    "volume_from_atoms",
]

METHODS = ("auto", "hed", "iso", "gmm")


def volume_from_atoms(
    atoms: AtomSet,
    voxel: float = 1.0,
    origin: tuple[float, float, float] | None = None,
    shape: tuple[int, int, int] | None = None,
    progress: Progress | None = None,
) -> CompositionVolume:
    """Atoms per element in cubic voxels of ``voxel`` nm (axes zyx).

    A shortcut for ``voxelize(atoms, voxel_size=voxel).composition_volume()``
    (:func:`napari_interfaces.apt.voxelize.voxelize`, the one voxelizer):
    by default the grid covers the atoms with voxel edges at multiples of
    ``voxel``, the same grid a point cloud of the same ions gets.
    ``origin`` (centre of voxel (0, 0, 0), z, y, x) and ``shape`` fix the
    grid instead.
    """
    from ..core.params import positive
    from .voxelize import voxelize

    voxel = positive("voxel", voxel)
    if atoms.n == 0:
        raise ValueError("no atoms to voxelize")
    grid = None
    if origin is not None:
        o = np.asarray(origin, np.float64)
        if shape is None:
            hi = atoms.zyx().max(axis=0).astype(np.float64)
            shape = tuple(int(v) for v in np.floor((hi - (o - voxel / 2)) / voxel) + 1)
        grid = (Grid(tuple(float(v) for v in o), (voxel,) * 3, "nm", "zyx"), tuple(shape))
    elif shape is not None:
        raise ValueError("shape needs an origin")
    vox = voxelize(atoms, voxel_size=voxel, grid=grid, progress=progress)
    return vox.composition_volume()


def atoms_from_cloud(
    cloud, ranges, elements: list[str] | None = None, progress: Progress | None = None
) -> AtomSet:
    """Decompose the ranged ions of a ``PointCloud`` into atoms (for proxigrams).

    Parameters
    ----------
    cloud : napari_interfaces.aptmodel.pointcloud.PointCloud
    ranges : napari_interfaces.aptmodel.ranging.RangeTable
    elements : list of str, optional
        Keep only these elements (default: every element of the ranges).
        Unranged ions are dropped.
    progress : Progress, optional
        Checked for cancellation after every chunk.
    """
    from ..core.errors import InputError

    progress = as_progress(progress)
    dec = np.asarray(ranges.decomposition())  # (n_species, n_elements)
    all_el = list(ranges.elements)
    els = list(elements) if elements else all_el
    missing = [e for e in els if e not in all_el]
    if missing:
        raise InputError(f"element(s) {missing} not in the range file (has {all_el})")
    xyz_parts, el_parts = [], []
    for a, b in cloud.chunks():
        progress.check()
        xyz, mass = cloud.native_chunk(a, b)
        species = np.asarray(ranges.species_of(mass))
        for s in range(dec.shape[0]):
            sel = species == s
            if not sel.any():
                continue
            p = xyz[sel]
            for e in els:
                k = int(dec[s, all_el.index(e)])
                for _ in range(k):
                    xyz_parts.append(p)
                    el_parts.append(np.full(len(p), els.index(e), np.int16))
    if not xyz_parts:
        src = f" ({ranges.source})" if getattr(ranges, "source", None) else ""
        raise InputError(
            f"0 of {cloud.n_ions:,} ions ranged{src}: check that the range file matches the data"
        )
    return AtomSet(np.concatenate(xyz_parts), np.concatenate(el_parts), els)


def find_interfaces(
    volume: CompositionVolume,
    method: str = "auto",
    *,
    elements: list[str] | None = None,
    axes: str = "zyx",
    sigma_vox: float = 1.0,
    weights: str = "auto",
    refine: bool = True,
    refine_sigma: float = 0.75,
    progress: Progress | None = None,
    **kwargs: Any,
) -> InterfaceResult:
    """Segment a composition volume into phases with ``method``.

    Parameters
    ----------
    volume : CompositionVolume
    method : ``"hed"`` (edge detection on slices), ``"iso"`` (iso-concentration
        threshold) or ``"gmm"`` (Gaussian mixture of voxel compositions)
    elements : element channels to use (default: the most varying ones)
    axes : slicing axes for HED (``"z"`` as in the paper, ``"zyx"`` combines all three)
    sigma_vox : Gaussian smoothing (voxels) of the counts before computing compositions
    weights : HED weights (``"auto"``, ``"finetuned"``, ``"bsds500"`` or a path)
    refine : reassign voxels near interfaces to the closest phase composition
        (boundary at the mid-composition crossing)
    refine_sigma : smoothing (voxels) of the compositions used by ``refine``;
        less than ``sigma_vox`` limits the shrinking of curved phases
    """
    progress = as_progress(progress)
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if method == "auto":
        from .auto import auto_interfaces

        return auto_interfaces(
            volume,
            elements=elements,
            sigma_vox=sigma_vox,
            refine_sigma=refine_sigma,
            progress=progress,
            **kwargs,
        )
    from . import phases as ph

    mask = volume.specimen_mask()
    comp, tot = volume.composition(sigma_vox)
    channels = ph.select_channels(comp, mask, volume.elements, elements)
    edge = None
    if method == "hed":
        from .edges import edge_probability

        edge = edge_probability(
            comp[channels], mask, axes=axes, weights=weights, progress=progress, **kwargs
        )
        labels = ph.phases_from_edges(edge, comp, tot, mask, volume, progress=progress)
    elif method == "iso":
        from .baselines import iso_concentration

        labels = iso_concentration(comp, tot, mask, volume, channels=channels, **kwargs)
    else:
        from .baselines import gmm_phases

        labels = gmm_phases(comp, tot, mask, volume, channels=channels, **kwargs)
    labels = ph.merge_by_composition(labels, volume, sigma_vox=sigma_vox)
    labels = ph.dissolve_shells(labels, comp, volume)
    if refine and labels.max() > 1:
        rcomp = comp if refine_sigma == sigma_vox else volume.composition(refine_sigma)[0]
        labels = ph.refine_boundaries(labels, rcomp, mask, volume)
        labels = ph.clean_islands(labels)
    return ph.make_result(labels, volume, edge, method, channels)


def analyse(
    volume: CompositionVolume,
    atoms: AtomSet | None,
    method: str = "auto",
    *,
    bin_nm: float = 0.25,
    range_nm: tuple[float, float] = (-5.0, 5.0),
    progress: Progress | None = None,
    **kwargs: Any,
):
    """:func:`find_interfaces` plus a proxigram (``None`` when no interface)."""
    res = find_interfaces(volume, method, progress=progress, **kwargs)
    prox = None
    if res.found and atoms is not None:
        from .proxigram import proxigram

        prox = proxigram(res.labels, res.grid, atoms, bin_nm=bin_nm, range_nm=range_nm)
    return res, prox
