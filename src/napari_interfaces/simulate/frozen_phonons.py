"""Frozen phonons: random thermal displacements per configuration.

Each atom is displaced by an isotropic 3D Gaussian with per-element RMS
displacement ``u`` (Å, standard deviation *per Cartesian axis*,
``<u_x^2> = u^2``, Debye-Waller ``B = 8 pi^2 u^2``). Images are averaged
incoherently over configurations.
"""

from __future__ import annotations

import numpy as np

from .parametrization import symbol

__all__ = ["DEFAULT_RMS", "displaced_positions", "rms_for"]

#: Room-temperature RMS displacements per axis (Å), from Debye-Waller factors
#: (Peng et al., Acta Cryst. A52 (1996) 456); other elements use 0.08 Å.
DEFAULT_RMS = {
    "C": 0.08, "Si": 0.076, "Cu": 0.085, "Ag": 0.095, "Au": 0.087, "Pt": 0.075,
    "Pd": 0.08, "Ni": 0.07, "Fe": 0.07, "Al": 0.1, "O": 0.09, "U": 0.07,
}  # fmt: skip


def rms_for(numbers, rms: float | dict | None = None) -> np.ndarray:
    """Per-atom RMS displacement (Å) from a float, a {symbol: u} dict or the defaults."""
    numbers = np.asarray(numbers)
    if isinstance(rms, (int, float)):
        return np.full(len(numbers), float(rms))
    table = dict(DEFAULT_RMS)
    if rms:
        table.update({k.capitalize(): float(v) for k, v in rms.items()})
    out = np.empty(len(numbers))
    for z in np.unique(numbers):
        out[numbers == z] = table.get(symbol(int(z)), 0.08)
    return out


def displaced_positions(positions, numbers, rms=None, rng: np.random.Generator | None = None):
    """One frozen-phonon configuration (positions + Gaussian displacements)."""
    rng = rng if rng is not None else np.random.default_rng()
    u = rms_for(numbers, rms)
    return np.asarray(positions) + rng.standard_normal((len(u), 3)) * u[:, None]
