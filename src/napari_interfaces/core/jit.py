"""Compiled kernels (numba): the one lazy, per-process cache of them.

numba is a dependency of the package, but every optional kernel has a NumPy
fallback giving identical results (used when numba cannot be imported, e.g. on
a Python it does not support yet, and checked by the tests). Set
``NAPARI_INTERFACES_NO_NUMBA=1`` to force the fallbacks. Kernels compile on
first use with ``cache=True``: numba keeps them on disk (``__pycache__``, or
``NUMBA_CACHE_DIR``, which the command line sets for its own process only, see
:func:`napari_interfaces.core.config.configure_numba_cache`; importing the
package sets nothing).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.core.jit import njit
>>> def total(a):
...     s = 0.0
...     for x in a:
...         s += x
...     return s
>>> fn = njit(total) or total  # None without numba: the Python function
>>> float(fn(np.arange(4.0)))
6.0
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["compiled", "disabled", "njit"]

#: key -> the built kernel(s), or None where building failed (no numba).
_CACHE: dict[str, Any] = {}


def disabled() -> bool:
    """Whether ``NAPARI_INTERFACES_NO_NUMBA`` asks for the NumPy fallbacks."""
    return bool(os.environ.get("NAPARI_INTERFACES_NO_NUMBA"))


def compiled(key: str, build: Callable[[], Any], *, required: bool = False) -> Any | None:
    """``build()`` once per process, cached under ``key``.

    Parameters
    ----------
    key : str
        Cache key, unique per kernel (e.g. the defining module and name).
    build : callable
        Imports numba and returns the compiled kernel (or a dict of them).
    required : bool
        The caller has no fallback: ignore ``NAPARI_INTERFACES_NO_NUMBA`` and
        let an import error propagate. Otherwise a failure (any exception: no
        numba) gives ``None``, remembered for the process.

    Returns
    -------
    object or None
        What ``build`` returned, or ``None`` without numba or when disabled.
    """
    if not required and disabled():
        return None
    if key not in _CACHE or (required and _CACHE[key] is None):
        try:
            _CACHE[key] = build()
        except Exception:  # any import or compile problem means "no numba"
            if required:
                raise
            _CACHE[key] = None
    return _CACHE[key]


def njit(fn: Callable, *, key: str | None = None, required: bool = False) -> Callable | None:
    """``fn`` compiled with ``numba.njit(cache=True, nogil=True)`` (cached), or ``None``.

    ``nogil`` lets the callers run the kernel in helper threads.
    """

    def build() -> Callable:
        import numba

        return numba.njit(cache=True, nogil=True)(fn)

    return compiled(key or f"{fn.__module__}.{fn.__qualname__}", build, required=required)
