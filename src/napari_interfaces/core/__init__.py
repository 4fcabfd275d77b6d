"""Shared types and services for every pipeline (no Qt, no napari).

- :mod:`.errors`: the project's user-facing errors (:class:`~.errors.InputError` and kin).
- :mod:`.outputs`: safe outputs (never over an input, ``overwrite``, atomic writes).
- :mod:`.limits`: size limits checked before reading or allocating.
- :mod:`.params`: parameter checks with the parameter's name in the message.
- :mod:`.progress`: progress reporting and cooperative cancellation.
- :mod:`.config`: user configuration and cache folders (numba's cache too).
- :mod:`.weights`: checksummed loading of model weights from local files.
- :mod:`.geometry`: arrays that carry their voxel/pixel geometry and units.
- :mod:`.opencl`: discovery of OpenCL platforms and devices (lazy pyopencl).
- :mod:`.runner`: the one dask runner (back-pressure, cancellation).
- :mod:`.sysinfo`: what ``napari-interfaces info`` and the System info dock report.
- :mod:`.units`: the one length-unit table (spellings, Å per unit, ``"pixel"``).
- :mod:`.jit`: the one lazy cache of compiled (numba) kernels.
- :mod:`.lazy`: the lazy public API of every subpackage (scikit-image style).

The main names are exported here and loaded on first use:

>>> from napari_interfaces import core
>>> issubclass(core.ParameterError, core.InputError)
True
>>> core.positive("tile", "256", integer=True)
256
"""

from __future__ import annotations

from .lazy import attach

#: Public name -> submodule that defines it (loaded on first use, scikit-image style).
_EXPORTS: dict[str, str] = {
    "InputError": "errors",
    "ParameterError": "errors",
    "OutputExistsError": "errors",
    "SizeLimitError": "errors",
    "check_output": "outputs",
    "atomic_file": "outputs",
    "atomic_dir": "outputs",
    "cleanup_stale": "outputs",
    "check_pixels": "limits",
    "check_bytes": "limits",
    "max_pixels": "limits",
    "max_bytes": "limits",
    "positive": "params",
    "non_negative": "params",
    "in_range": "params",
    "fraction": "params",
    "one_of": "params",
    "Progress": "progress",
    "Cancelled": "progress",
    "as_progress": "progress",
    "cli_progress": "progress",
    "Grid": "geometry",
    "GriddedArray": "geometry",
    "WeightsError": "weights",
    "find_weights": "weights",
    "load_torch_state": "weights",
    "cache_dir": "config",
    "config_dir": "config",
    "load_config": "config",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
