"""Atom probe tomography engine (no Qt, no napari): data model, voxels, phases, workflows.

The public API is exported here, scikit-image style (``lazy_loader.attach``),
and loaded lazily: a name's module is imported on first use, so ``import napari_interfaces.apt``
stays cheap (no torch, dask or scipy until needed).

Layers, bottom up: the data model (:class:`PointCloud`, :class:`Range`,
:class:`RangeTable`, elements) imports nothing else of the package;
:func:`open_dataset` (readers of :mod:`napari_interfaces.io`) gives an
:class:`APTDataset`; ``voxelize.voxelize`` is the one voxelizer; the workflows
(:func:`explore`, :func:`segment_dataset`, :func:`profiles`,
:func:`dataset_info`) are what the CLI, the dask batch and the docks call.

Functions named like their module (``voxelize.voxelize``,
``proxigram.proxigram``) are not re-exported here, so that
``napari_interfaces.apt.voxelize`` always names the module.

Examples
--------
>>> import napari_interfaces.apt as apt
>>> apt.RangeTable.__name__, callable(apt.open_dataset)
('RangeTable', True)
"""

from __future__ import annotations

from ..aptmodel import _EXPORTS as _MODEL_EXPORTS
from ..core.lazy import attach

#: Public name -> submodule that defines it. The data model's names are
#: :mod:`napari_interfaces.aptmodel`'s own list: this package's ``pointcloud``,
#: ``ranging`` and ``elements`` modules re-export those modules.
_EXPORTS: dict[str, str] = {
    **_MODEL_EXPORTS,
    # the one loader and the one voxelizer
    "APTDataset": "dataset",
    "RangingWarning": "dataset",
    "open_dataset": "dataset",
    "VoxelCounts": "voxelize",
    "grid_for_bounds": "voxelize",
    "delocalize": "voxelize",
    # analysis
    "mass_spectrum": "spectrum",
    "slab": "slicing",
    "slab_points": "slicing",
    "slab_means": "slicing",
    "AtomSet": "volume",
    "CompositionVolume": "volume",
    "InterfaceResult": "volume",
    "atoms_from_cloud": "interfaces",
    "find_interfaces": "interfaces",
    "volume_from_atoms": "interfaces",
    "Proxigram": "proxigram",
    "cylinder_profile": "profile",
    "synthesize": "synthetic",
    # workflows (CLI, batch and docks)
    "ExploreResult": "workflows",
    "InterfacesRun": "workflows",
    "ProfilesResult": "workflows",
    "dataset_info": "workflows",
    "explore": "workflows",
    "prepare_interfaces": "workflows",
    "profiles": "workflows",
    "segment_dataset": "workflows",
    "run_batch": "batch",
    "segment_file": "batch",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
