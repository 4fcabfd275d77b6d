"""Compiled kernels (numba) for the one-pass hot loops.

numba is a dependency of the package, but every caller keeps a numpy path
giving identical results (used when numba cannot be imported, e.g. on a
Python it does not support yet, and checked by the tests). Set
``NAPARI_INTERFACES_NO_NUMBA=1`` to force numpy. Kernels are compiled on
first use and cached on disk (``__pycache__``), and always receive
``(n, 4)`` C-contiguous float32 records (x, y, z, m) so one signature serves
every format.
"""

from __future__ import annotations

import os

__all__ = ["kernels"]

_KERNELS: dict | None = None
_TRIED = False


def kernels() -> dict | None:
    """``{"bin", "bounds", "count", "finite"}`` kernels, or ``None`` without numba."""
    global _KERNELS, _TRIED
    if os.environ.get("NAPARI_INTERFACES_NO_NUMBA"):
        return None
    if not _TRIED:
        _TRIED = True
        try:
            from . import _numba_kernels as k
        except Exception:  # any import problem means "no numba"
            return None
        _KERNELS = {
            "bin": k.bin_ions,
            "bounds": k.bounds,
            "count": k.count_species,
            "finite": k.first_nonfinite,
        }
    return _KERNELS
