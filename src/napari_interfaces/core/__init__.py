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
"""
