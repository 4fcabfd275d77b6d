"""The transmission step ``psi <- psi exp(i sigma v)`` in one pass over the wave.

In the default ("propagator") band-limit scheme of :mod:`.multislice` the
transmission function is never band-limited, so it need not exist as an
array: the host backends (NumPy and torch on the CPU) keep a slice's
projected potential and multiply the wave by its phase factor in one compiled
loop (numba), reading the potential and the wave once. Built from
whole-array operations the same step takes five passes (scale, cos, sin,
interleave, multiply; ~4 ms for a 1024² slice on one core against ~0.8 ms).
Two slices whose potentials come from one complex FFT pair (real and
imaginary part) are read in place.

The phase factor comes from a polynomial: the phase is reduced to
``[-pi, pi]`` and sin and cos are their Taylor series to order 15 and 16
(truncation < 1e-6 at ``|r| = pi``), which the compiler vectorizes; relative
error against ``exp`` in double precision ~3e-7, the float32 rounding of the
phase itself. Without numba (or with ``NAPARI_INTERFACES_NO_NUMBA=1``)
:func:`phase_maps` returns ``None`` and the backends build ``exp(i sigma v)``
as before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.jit import compiled

__all__ = ["Phase", "PhaseMaps", "phase_maps", "transmit"]


#: Taylor coefficients of sin(r) / r and cos(r) as polynomials in r², highest first
#: (orders 15 and 16: truncation < 1e-6 at |r| = pi)
_SIN = tuple(np.float32((-1) ** k / math.factorial(2 * k + 1)) for k in range(7, -1, -1))
_COS = tuple(np.float32((-1) ** k / math.factorial(2 * k)) for k in range(8, -1, -1))


def _transmit_rows(psi, w, imag, sigma, y0, y1):  # pragma: no cover - compiled by numba
    """``psi[y0:y1] *= exp(i sigma v[y0:y1])``, ``v`` = ``w`` (float32) or the real or
    imaginary part of ``w`` (complex64: two slices' potentials from one FFT pair)."""
    two_pi = np.float32(2.0 * np.pi)
    inv_two_pi = np.float32(1.0 / (2.0 * np.pi))
    s32 = np.float32(sigma)
    nx = psi.shape[1]
    for y in range(y0, y1):
        for x in range(nx):
            ph = s32 * (w[y, x].imag if imag else w[y, x].real)
            r = ph - np.floor(ph * inv_two_pi + np.float32(0.5)) * two_pi  # [-pi, pi]
            r2 = r * r
            s = np.float32(0.0)
            for a in _SIN:  # Horner
                s = s * r2 + a
            s = s * r
            c = np.float32(0.0)
            for a in _COS:
                c = c * r2 + a
            p = psi[y, x]
            psi[y, x] = complex(p.real * c - p.imag * s, p.real * s + p.imag * c)


def _kernel():
    def build():
        import numba

        return numba.njit(cache=True, nogil=True, fastmath=True)(_transmit_rows)

    return compiled(f"{__name__}._transmit_rows", build)


class Phase:
    """One slice's projected potential and ``sigma``: ``w`` (float32) or, with ``imag``
    set or not, the imaginary or real part of ``w`` (complex64); C-contiguous."""

    __slots__ = ("imag", "sigma", "w")

    def __init__(self, w: np.ndarray, sigma: float, imag: bool = False) -> None:
        self.w, self.sigma, self.imag = w, float(sigma), bool(imag)


class PhaseMaps:
    """A batch of :class:`Phase` (what the host backends' ``transmissions`` give in
    the propagator scheme), indexable by slice."""

    def __init__(self, v: np.ndarray, sigma: float) -> None:
        self.sigma = float(sigma)
        parts = np.moveaxis(v, 0, -1) if v.ndim == 3 and v.dtype == np.float32 else None
        if parts is not None and parts.shape[-1] == 2 and parts.flags.c_contiguous:
            # the (2, ny, nx) real/imaginary view of one complex array (a pair of
            # slices): read in place, no copy
            self.pair = parts.view(np.complex64)[..., 0]
            self.v = None
        else:
            self.pair = None
            self.v = np.ascontiguousarray(v, dtype=np.float32)

    def __len__(self) -> int:
        return 2 if self.pair is not None else len(self.v)

    def __getitem__(self, j: int) -> Phase:
        if self.pair is not None:
            if j not in (0, 1, -1, -2):
                raise IndexError(j)
            return Phase(self.pair, self.sigma, imag=j % 2 == 1)
        return Phase(self.v[j], self.sigma)


def phase_maps(v: Any, sigma: float) -> PhaseMaps | None:
    """The potentials ``v`` ``(B, ny, nx)`` (host array, any strides) as
    :class:`PhaseMaps`, or ``None`` without the compiled kernel."""
    if _kernel() is None:
        return None
    return PhaseMaps(np.asarray(v), sigma)


def transmit(psi: np.ndarray, phase: Phase) -> None:
    """``psi *= exp(i sigma v)`` in place (``psi``: complex64, C-contiguous host array).

    One thread: splitting the rows over two threads gained nothing measurable on a
    2-core machine, where torch's OpenMP threads still spin after each FFT.
    """
    _kernel()(psi, phase.w, phase.imag, np.float32(phase.sigma), 0, psi.shape[0])
