"""Electron-optical constants: relativistic wavelength and interaction parameter.

Energies are the accelerating voltage in kV (``energy_kv``); lengths in Å.
CODATA values from :mod:`scipy.constants`.

Examples
--------
>>> round(wavelength(200), 6)
0.025079
>>> f"{interaction_parameter(200):.4e}"
'7.2884e-04'
"""

from __future__ import annotations

import math

from ..core.errors import InputError

__all__ = ["energy_to_mass", "interaction_parameter", "wavelength"]

_H = 6.62607015e-34  # Planck constant, J s
_C = 299792458.0  # speed of light, m/s
_M0 = 9.1093837015e-31  # electron rest mass, kg
_E = 1.602176634e-19  # elementary charge, C


def _check(energy_kv: float) -> float:
    e = float(energy_kv)
    if not (1.0 <= e <= 5000.0):
        raise InputError(f"energy {energy_kv} kV is outside 1..5000 kV")
    return e


def wavelength(energy_kv: float) -> float:
    """Relativistic electron wavelength in Å.

    ``lambda = h / sqrt(2 m0 e V (1 + e V / (2 m0 c^2)))``; 0.025079 Å at 200 kV.
    """
    v = _check(energy_kv) * 1e3
    ev = _E * v
    return _H / math.sqrt(2 * _M0 * ev * (1 + ev / (2 * _M0 * _C**2))) * 1e10


def energy_to_mass(energy_kv: float) -> float:
    """Relativistic electron mass (kg) at ``energy_kv``."""
    return _M0 + _E * _check(energy_kv) * 1e3 / _C**2


def interaction_parameter(energy_kv: float) -> float:
    """Interaction parameter sigma in rad/(V*Å).

    ``sigma = 2 pi m e lambda / h^2`` with the relativistic mass ``m``
    (Kirkland eq. 5.6); 7.2884e-4 rad/(V*Å) at 200 kV. The transmission
    function of a slice with projected potential ``v_z`` (V*Å) is
    ``exp(i sigma v_z)``.
    """
    lam = wavelength(energy_kv) * 1e-10
    return 2 * math.pi * energy_to_mass(energy_kv) * _E * lam / _H**2 * 1e-10
