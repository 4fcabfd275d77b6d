"""The compiled kernels (numba) of the APT one-pass hot loops.

Every caller keeps a NumPy path giving identical results (see
:mod:`napari_interfaces.core.jit`, which caches the kernels). The kernels
always receive ``(n, 4)`` C-contiguous float32 records (x, y, z, m), so one
signature serves every format.
"""

from __future__ import annotations

from ..core.jit import compiled

__all__ = ["kernels"]


def _build() -> dict:
    from . import _numba_kernels as k

    return {
        "bin": k.bin_ions,
        "bounds": k.bounds,
        "count": k.count_species,
        "finite": k.first_nonfinite,
    }


def kernels() -> dict | None:
    """``{"bin", "bounds", "count", "finite"}`` kernels, or ``None`` without numba."""
    return compiled("aptmodel.kernels", _build)
