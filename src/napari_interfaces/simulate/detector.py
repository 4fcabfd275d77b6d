"""Detector model: dose-dependent Poisson noise, parametric MTF, median filter,
resampling and cropping to a target pixel size.

Intensities are normalised to the incident beam (vacuum = 1). With a dose
``D`` (electrons/Å^2) a pixel of area ``dx*dy`` receives on average
``N = D dx dy I`` electrons; the noisy image is ``Poisson(N) / (D dx dy)``
(still normalised, so vacuum averages 1).

MTF (parametric, in units of the detector Nyquist frequency ``q``, 0..1 at
the edge)::

    MTF(q) = (1 - c) / (1 + (q / q0)^p) + c

(``c`` a constant floor, ``q0`` the half-height frequency, ``p`` the
power; e.g. q0 = 0.5, c = 0.1, p = 2). It is applied to the noisy counts
(the detector spreads each electron's signal).
"""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError

__all__ = [
    "apply_detector",
    "apply_mtf",
    "background_gradient",
    "crop",
    "motion_blur",
    "mtf_curve",
    "poisson_noise",
    "resample",
]


def poisson_noise(image, dose: float, sampling, rng: np.random.Generator | None = None):
    """Poisson noise for ``dose`` e/Å² on pixels of ``sampling = (dx, dy)`` Å."""
    if dose is None:
        return np.asarray(image, np.float32)
    if not dose > 0:
        raise InputError(f"dose must be > 0 e/Å², got {dose}")
    rng = rng if rng is not None else np.random.default_rng()
    n = float(dose) * sampling[0] * sampling[1]
    lam = np.clip(np.asarray(image, np.float64), 0, None) * n
    return (rng.poisson(lam) / n).astype(np.float32)


def mtf_curve(q, q0: float = 0.5, c: float = 0.0, power: float = 2.0):
    """Parametric MTF at ``q`` in Nyquist units (1 at the detector's Nyquist)."""
    q = np.asarray(q, dtype=np.float64)
    return (1 - c) / (1 + (q / q0) ** power) + c


def apply_mtf(image, q0: float = 0.5, c: float = 0.0, power: float = 2.0):
    """Multiply the image spectrum by :func:`mtf_curve` (radial, Nyquist units)."""
    image = np.asarray(image, np.float32)
    ny, nx = image.shape
    qy = np.fft.fftfreq(ny)[:, None] * 2
    qx = np.fft.rfftfreq(nx)[None, :] * 2
    q = np.sqrt(qx**2 + qy**2)
    spec = np.fft.rfft2(image) * mtf_curve(q, q0, c, power)
    return np.fft.irfft2(spec, s=image.shape).astype(np.float32)


def resample(image, sampling, target: float):
    """Fourier-resample ``image`` (pixel ``sampling = (dx, dy)``) to ``target`` Å pixels.

    Returns ``(image, (dx', dy'))``; the field of view is kept (the new
    pixel size is the field of view over the rounded pixel count).
    """
    image = np.asarray(image, np.float32)
    ny, nx = image.shape
    dx, dy = sampling
    mx = max(1, int(round(nx * dx / target)))
    my = max(1, int(round(ny * dy / target)))
    if (mx, my) == (nx, ny):
        return image, (dx, dy)
    spec = np.fft.fftshift(np.fft.fft2(image))
    out = np.zeros((my, mx), np.complex128)
    cy, cx = ny // 2, nx // 2
    oy, ox = my // 2, mx // 2
    hy, hx = min(ny, my) // 2, min(nx, mx) // 2
    out[oy - hy : oy + hy, ox - hx : ox + hx] = spec[cy - hy : cy + hy, cx - hx : cx + hx]
    img = np.fft.ifft2(np.fft.ifftshift(out)).real * (mx * my) / (nx * ny)
    return img.astype(np.float32), (nx * dx / mx, ny * dy / my)


def crop(image, shape, origin=None):
    """Crop ``shape = (ny, nx)`` pixels at ``origin = (row, col)`` (centred when None)."""
    image = np.asarray(image)
    ny, nx = image.shape[-2:]
    h, w = int(shape[0]), int(shape[1])
    if h > ny or w > nx:
        raise InputError(f"crop {h}x{w} larger than the image {ny}x{nx}")
    r, c = origin if origin is not None else ((ny - h) // 2, (nx - w) // 2)
    return image[..., r : r + h, c : c + w]


def motion_blur(image, sampling, blur: float = 0.0, drift: float = 0.0, angle: float = 0.0):
    """Specimen drift and instabilities as an image blur (before the detector's noise).

    ``blur``: rms (Å) of an isotropic Gaussian (vibration, stage and
    high-tension instabilities, the loss of resolution of a beam-sensitive
    or moving specimen); ``drift``: length (Å) of a uniform linear motion
    during the exposure along ``angle`` (radians). Both act as their
    Fourier transforms (a Gaussian and a sinc) on the periodic image.
    """
    image = np.asarray(image, np.float32)
    if not (blur or drift):
        return image
    ny, nx = image.shape
    dx, dy = sampling
    ky = np.fft.fftfreq(ny, dy)[:, None]
    kx = np.fft.rfftfreq(nx, dx)[None, :]
    h = np.ones((ny, nx // 2 + 1))
    if blur:
        h = h * np.exp(-2 * (np.pi * float(blur)) ** 2 * (kx**2 + ky**2))
    if drift:
        kd = kx * np.cos(angle) + ky * np.sin(angle)
        h = h * np.sinc(float(drift) * kd)
    return np.fft.irfft2(np.fft.rfft2(image) * h, s=image.shape).astype(np.float32)


def background_gradient(image, gradient: float = 0.0, angle: float = 0.0):
    """Multiply by a linear illumination ramp of relative amplitude ``gradient`` across the field.

    Uneven illumination (a tilted or off-centre beam) scales the intensity
    by ``1 + gradient * (u - 0.5)``, ``u`` going 0 to 1 across the image
    along ``angle``; the mean dose is unchanged.
    """
    image = np.asarray(image, np.float32)
    if not gradient:
        return image
    ny, nx = image.shape
    yy, xx = np.mgrid[:ny, :nx]
    u = (xx / max(1, nx - 1)) * np.cos(angle) + (yy / max(1, ny - 1)) * np.sin(angle)
    u = (u - u.min()) / max(1e-9, float(np.ptp(u)))
    return (image * (1 + float(gradient) * (u - 0.5))).astype(np.float32)


def apply_detector(
    image,
    sampling,
    dose: float | None = None,
    mtf: dict | None = None,
    median: int = 0,
    rng: np.random.Generator | None = None,
    blur: float = 0.0,
    drift: float = 0.0,
    gradient: float = 0.0,
):
    """Blur/drift and illumination gradient (when set), noise (when ``dose``), then MTF
    (``mtf`` = kwargs of :func:`mtf_curve`), then an optional ``median`` filter of that
    size (pixels).

    ``blur``, ``drift`` (Å) and ``gradient`` default to 0: then the random
    stream and the output are those of the plain detector. Their directions
    are drawn from ``rng`` only when they are used.
    """
    rng = rng if rng is not None else np.random.default_rng()
    if drift:
        image = motion_blur(image, sampling, 0.0, drift, float(rng.uniform(0, np.pi)))
    if blur:
        image = motion_blur(image, sampling, blur)
    if gradient:
        image = background_gradient(image, gradient, float(rng.uniform(0, 2 * np.pi)))
    out = poisson_noise(image, dose, sampling, rng) if dose else np.asarray(image, np.float32)
    if mtf:
        out = apply_mtf(out, **mtf)
    if median and median > 1:
        from scipy.ndimage import median_filter

        out = median_filter(out, size=int(median))
    return out.astype(np.float32)
