"""Shared types and services for every pipeline (no Qt, no napari).

- :mod:`.progress`: progress reporting and cooperative cancellation.
- :mod:`.config`: user configuration and cache folders.
- :mod:`.weights`: checksummed loading of model weights from local files.
- :mod:`.geometry`: arrays that carry their voxel/pixel geometry and units.
- :mod:`.opencl`: discovery of OpenCL platforms and devices (lazy pyopencl).
"""
