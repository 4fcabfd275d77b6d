"""numba kernels (compiled at first use, cached on disk). Import via :mod:`._numba`."""

from __future__ import annotations

import numba
import numpy as np


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
def bin_ions(rec, edge0, inv, shape, edges, interval_species, n_sp, acc):  # pragma: no cover
    """rec: (n, >=4) float32 records x, y, z, m."""
    nz, ny, nx = shape[0], shape[1], shape[2]
    nvox = nz * ny * nx
    n_out = 0
    for i in range(rec.shape[0]):
        fz = (np.float64(rec[i, 2]) - edge0[0]) * inv[0]
        fy = (np.float64(rec[i, 1]) - edge0[1]) * inv[1]
        fx = (np.float64(rec[i, 0]) - edge0[2]) * inv[2]
        if not (0.0 <= fz < nz and 0.0 <= fy < ny and 0.0 <= fx < nx):
            n_out += 1
            continue
        sp = _species(rec[i, 3], edges, interval_species)
        if sp < 0:
            sp = n_sp
        acc[sp * nvox + (int(fz) * ny + int(fy)) * nx + int(fx)] += 1
    return n_out


@numba.njit(cache=True, nogil=True)
def bounds(rec, lo, hi):  # pragma: no cover
    for i in range(rec.shape[0]):
        for k in range(3):
            v = rec[i, k]
            if v < lo[k]:
                lo[k] = v
            if v > hi[k]:
                hi[k] = v


@numba.njit(cache=True, nogil=True)
def count_species(rec, edges, interval_species, n_sp, out):  # pragma: no cover
    for i in range(rec.shape[0]):
        sp = _species(rec[i, 3], edges, interval_species)
        if sp < 0:
            sp = n_sp
        out[sp] += 1


@numba.njit(cache=True, nogil=True)
def first_nonfinite(rec):  # pragma: no cover
    """Index of the first record with a NaN/inf among x, y, z, m, or -1."""
    for i in range(rec.shape[0]):
        for k in range(4):
            v = rec[i, k]
            if not (v - v == 0.0):  # false for NaN and +-inf
                return i
    return -1
