"""Contrast transfer function: aberrations to 5th order, aperture, coherence.

Aberrations use Krivanek's notation ``C_nm`` (Å) with azimuths ``phi_nm``
(rad), ``alpha = lambda k`` the scattering angle and ``phi`` its azimuth::

    chi(alpha, phi) = 2 pi / lambda * sum_nm  alpha^(n+1) / (n+1) * C_nm cos(m (phi - phi_nm))

for n = 1..5, m = n+1, n-1, ... >= 0 (C10, C12, C21, C23, C30, C32, C34,
C41, C43, C45, C50, C52, C54, C56). The image wave is
``psi_i(k) = psi(k) A(k) exp(-i chi(k))`` (Kirkland's sign).

**Defocus** ``defocus = -C10`` (Å): a positive defocus is underfocus, as in
Kirkland's textbook (Scherzer defocus ``+sqrt(1.5 Cs lambda)`` = 700 Å at
200 kV and Cs = 1.3 mm).
``cs`` is ``C30`` (Å; 1 mm = 1e7 Å).

**Temporal coherence** (chromatic focal spread): ``focal_spread`` is the
*standard deviation* sigma_f (Å) of a Gaussian distribution of defocus (its
1/e half-width is sqrt(2) sigma_f). Two models:

* ``"sum"``: an explicit incoherent sum of images over ``n_focal``
  Gauss-Hermite defocus values (exact for the Gaussian distribution);
* ``"envelope"``: the quasi-coherent envelope
  ``E_t(k) = exp(-(pi lambda sigma_f)^2 k^4 / 2)`` applied to the wave.

**Spatial coherence**: ``source_spread_mrad`` is the standard deviation
theta (mrad) of a Gaussian distribution of incident beam tilts; envelope
``E_s(k) = exp(-(theta / lambda)^2 |grad_k chi|^2 / 2)`` with
``grad_k chi`` in rad*Å (Kirkland's ``alpha_0`` 1/e-width form is
``alpha_0 = sqrt(2) theta``).

**Aperture**: objective aperture semi-angle ``aperture_mrad`` (hard edge,
anti-aliased over one pixel of k).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..core.errors import InputError
from .constants import wavelength

__all__ = ["ABERRATION_SYMBOLS", "CTF", "polar_aberrations"]

#: (symbol, n, m) in Krivanek notation.
ABERRATION_SYMBOLS = (
    ("C10", 1, 0), ("C12", 1, 2),
    ("C21", 2, 1), ("C23", 2, 3),
    ("C30", 3, 0), ("C32", 3, 2), ("C34", 3, 4),
    ("C41", 4, 1), ("C43", 4, 3), ("C45", 4, 5),
    ("C50", 5, 0), ("C52", 5, 2), ("C54", 5, 4), ("C56", 5, 6),
)  # fmt: skip
_NAMES = {s for s, _, _ in ABERRATION_SYMBOLS}


def polar_aberrations(alpha, phi, wavelength_a: float, coefficients: dict) -> np.ndarray:
    """Aberration phase chi (rad) at angles ``alpha`` (rad) and azimuths ``phi``."""
    chi = np.zeros(np.broadcast(alpha, phi).shape)
    for sym, n, m in ABERRATION_SYMBOLS:
        c = coefficients.get(sym, 0.0)
        if not c:
            continue
        ang = coefficients.get("phi" + sym[1:], 0.0)
        term = alpha ** (n + 1) / (n + 1) * c
        chi = chi + (term * np.cos(m * (phi - ang)) if m else term)
    return 2 * np.pi / wavelength_a * chi


@dataclass
class CTF:
    """Objective lens transfer and partial coherence (see the module docstring).

    Parameters
    ----------
    energy_kv : float
    defocus : float
        Å, ``= -C10``; positive is underfocus.
    cs : float
        Spherical aberration ``C30`` in Å (1.3 mm = 1.3e7 Å).
    aberrations : dict
        Other Krivanek coefficients (Å) and azimuths (rad): ``{"C12": 20,
        "phi12": 0.3, "C50": 5e7, ...}``. ``C10``/``C30`` here add to
        ``-defocus``/``cs``.
    aperture_mrad : float or None
        Objective aperture semi-angle; None = no aperture.
    focal_spread : float
        Standard deviation of defocus (Å) for temporal coherence.
    focal_mode : ``"envelope"`` or ``"sum"``
    n_focal : int
        Gauss-Hermite points for ``focal_mode="sum"``.
    source_spread_mrad : float
        Standard deviation of the beam-tilt distribution (spatial coherence).
    """

    energy_kv: float = 200.0
    defocus: float = 0.0
    cs: float = 0.0
    aberrations: dict = field(default_factory=dict)
    aperture_mrad: float | None = None
    focal_spread: float = 0.0
    focal_mode: str = "envelope"
    n_focal: int = 7
    source_spread_mrad: float = 0.0

    def __post_init__(self) -> None:
        if self.aberrations is None:
            self.aberrations = {}
        unknown = set(self.aberrations) - _NAMES - {"phi" + s[1:] for s in _NAMES}
        if unknown:
            raise InputError(
                f"unknown aberration(s) {sorted(unknown)}; use Krivanek C10..C56 and phi12..phi56"
            )
        if self.focal_mode not in ("envelope", "sum"):
            raise InputError("focal_mode must be 'envelope' or 'sum'")
        if self.focal_spread < 0 or self.source_spread_mrad < 0:
            raise InputError("focal_spread and source_spread_mrad must be >= 0")

    def replace(self, **changes) -> CTF:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return CTF(**values)

    @property
    def coefficients(self) -> dict:
        c = {k: float(v) for k, v in self.aberrations.items()}
        c["C10"] = c.get("C10", 0.0) - float(self.defocus)
        c["C30"] = c.get("C30", 0.0) + float(self.cs)
        return c

    def _polar(self, ky, kx):
        lam = wavelength(self.energy_kv)
        k = np.sqrt(kx**2 + ky**2)
        return lam * k, np.arctan2(ky, kx), lam

    def chi(self, ky, kx, extra_defocus: float = 0.0) -> np.ndarray:
        alpha, phi, lam = self._polar(ky, kx)
        c = self.coefficients
        c["C10"] -= extra_defocus
        return polar_aberrations(alpha, phi, lam, c)

    def aperture(self, ky, kx, dk: float | None = None) -> np.ndarray:
        alpha, _, lam = self._polar(ky, kx)
        if self.aperture_mrad is None:
            return np.ones(alpha.shape)
        cut = self.aperture_mrad * 1e-3
        if dk is None:
            return (alpha <= cut).astype(float)
        width = dk * lam  # soften over one pixel in k
        return np.clip((cut - alpha) / width + 0.5, 0.0, 1.0)

    def temporal_envelope(self, ky, kx) -> np.ndarray:
        lam = wavelength(self.energy_kv)
        k2 = kx**2 + ky**2
        return np.exp(-0.5 * (np.pi * lam * self.focal_spread) ** 2 * k2**2)

    def spatial_envelope(self, ky, kx) -> np.ndarray:
        if not self.source_spread_mrad:
            return np.ones(np.broadcast(ky, kx).shape)
        lam = wavelength(self.energy_kv)
        h = 1e-4
        gx = (self.chi(ky, kx + h) - self.chi(ky, kx - h)) / (2 * h)
        gy = (self.chi(ky + h, kx) - self.chi(ky - h, kx)) / (2 * h)
        theta = self.source_spread_mrad * 1e-3
        return np.exp(-0.5 * (theta / lam) ** 2 * (gx**2 + gy**2))

    def transfer(self, ky, kx, dk=None, extra_defocus: float = 0.0, temporal=None) -> np.ndarray:
        """Complex wave transfer ``A E_s [E_t] exp(-i chi)`` on a frequency grid."""
        h = self.aperture(ky, kx, dk) * self.spatial_envelope(ky, kx)
        if temporal if temporal is not None else self.focal_mode == "envelope":
            if self.focal_spread:
                h = h * self.temporal_envelope(ky, kx)
        return h * np.exp(-1j * self.chi(ky, kx, extra_defocus))

    def focal_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Defocus offsets (Å) and weights of the explicit focal-spread sum."""
        if self.focal_mode != "sum" or not self.focal_spread or self.n_focal < 2:
            return np.zeros(1), np.ones(1)
        x, w = np.polynomial.hermite_e.hermegauss(int(self.n_focal))
        return x * self.focal_spread, w / w.sum()

    def image(self, exit_waves, sampling) -> np.ndarray:
        """Intensity image (float32) of one exit wave or a stack (averaged incoherently).

        ``exit_waves``: complex ``(ny, nx)`` or ``(n, ny, nx)`` (frozen phonons);
        ``sampling = (dx, dy)`` Å.
        """
        import scipy.fft

        from .backends import FFT_WORKERS

        waves = np.asarray(exit_waves)
        if waves.ndim == 2:
            waves = waves[None]
        ny, nx = waves.shape[-2:]
        dx, dy = sampling
        ky = np.fft.fftfreq(ny, dy)[:, None]
        kx = np.fft.fftfreq(nx, dx)[None, :]
        dk = min(1 / (nx * dx), 1 / (ny * dy))
        spectra = scipy.fft.fft2(waves.astype(np.complex64), workers=FFT_WORKERS)
        offsets, weights = self.focal_points()
        out = np.zeros((ny, nx), np.float64)
        for off, w in zip(offsets, weights):
            h = self.transfer(ky, kx, dk, extra_defocus=off).astype(np.complex64)
            img = scipy.fft.ifft2(spectra * h, workers=FFT_WORKERS)
            out += w * (np.abs(img) ** 2).mean(0)
        return out.astype(np.float32)
