"""Optional compiled kernels (numba) for the one-pass hot loops.

numba is not a dependency (it comes with abTEM when installed); every
caller has a numpy path giving identical results. Set
``NAPARI_INTERFACES_NO_NUMBA=1`` to force numpy. Kernels are compiled on
first use and cached on disk.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["kernels"]

_KERNELS: dict | None = None
_TRIED = False


def kernels() -> dict | None:
    """``{"bin": ..., "bounds": ..., "count": ...}`` or ``None`` without numba."""
    global _KERNELS, _TRIED
    if os.environ.get("NAPARI_INTERFACES_NO_NUMBA"):
        return None
    if _TRIED:
        return _KERNELS
    _TRIED = True
    try:
        import numba
    except Exception:  # noqa: BLE001 - any import problem means "no numba"
        return None

    @numba.njit(cache=True, nogil=True, inline="always")
    def _species(m, edges, interval_species):  # pragma: no cover - compiled
        lo = 0
        hi = edges.shape[0]
        while lo < hi:  # searchsorted(edges, m, side="right")
            mid = (lo + hi) >> 1
            if edges[mid] <= m:
                lo = mid + 1
            else:
                hi = mid
        return interval_species[lo]

    @numba.njit(cache=True, nogil=True)
    def bin_ions(
        xyz, mass, edge0, inv, shape, edges, interval_species, n_sp, acc
    ):  # pragma: no cover
        nz, ny, nx = shape[0], shape[1], shape[2]
        nvox = nz * ny * nx
        n_out = 0
        for i in range(xyz.shape[0]):
            fz = (np.float64(xyz[i, 2]) - edge0[0]) * inv[0]
            fy = (np.float64(xyz[i, 1]) - edge0[1]) * inv[1]
            fx = (np.float64(xyz[i, 0]) - edge0[2]) * inv[2]
            if not (0.0 <= fz < nz and 0.0 <= fy < ny and 0.0 <= fx < nx):
                n_out += 1
                continue
            sp = _species(mass[i], edges, interval_species)
            if sp < 0:
                sp = n_sp
            acc[sp * nvox + (int(fz) * ny + int(fy)) * nx + int(fx)] += 1
        return n_out

    @numba.njit(cache=True, nogil=True)
    def bounds(xyz, lo, hi):  # pragma: no cover
        for i in range(xyz.shape[0]):
            for k in range(3):
                v = xyz[i, k]
                if v < lo[k]:
                    lo[k] = v
                if v > hi[k]:
                    hi[k] = v

    @numba.njit(cache=True, nogil=True)
    def count_species(mass, edges, interval_species, n_sp, out):  # pragma: no cover
        for i in range(mass.shape[0]):
            sp = _species(mass[i], edges, interval_species)
            if sp < 0:
                sp = n_sp
            out[sp] += 1

    _KERNELS = {"bin": bin_ions, "bounds": bounds, "count": count_species}
    return _KERNELS
