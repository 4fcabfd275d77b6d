"""Chip size from the image: dominant length scale -> chip and stride.

``choose_chip(image)`` measures the image's dominant length scale from its
radially averaged power spectrum and picks the chip side so that a chip
holds a few periods of that scale, bounded by the image size (enough chips
to resolve regions). A chip given by the user always wins.

Examples
--------
>>> from napari_interfaces.cluster.synthetic import lattice_image
>>> from napari_interfaces.cluster.scale import choose_chip, dominant_length_scale
>>> img = lattice_image((512, 512), period=8.0)
>>> round(dominant_length_scale(img), 1)
8.0
>>> c = choose_chip(img)
>>> c.chip, c.stride, c.method
(48, 24, 'spectrum')
>>> choose_chip(img, chip=64).method      # a user value wins
'user'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ChipChoice", "choose_chip", "dominant_length_scale", "power_spectrum_profile"]


@dataclass(frozen=True)
class ChipChoice:
    """The chip setting used and why.

    Attributes
    ----------
    chip, stride : int
        Chip side and step in pixels.
    length_scale_px : float
        The image's dominant length scale (period) in pixels; ``nan`` when a
        user value was taken without measuring.
    method : str
        ``"user"`` (given chip), ``"spectrum"`` (power-spectrum peak) or
        ``"size"`` (no clear peak or limited by the image size).
    """

    chip: int
    stride: int
    length_scale_px: float
    method: str

    def settings(self) -> dict:
        """JSON-ready dict (for result settings, tables, the dock)."""
        d = asdict(self)
        d["length_scale_px"] = (
            None if not np.isfinite(self.length_scale_px) else round(self.length_scale_px, 2)
        )
        return d


def _gray(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        x = x.mean(-1)
    if x.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {x.shape}")
    return x


def power_spectrum_profile(
    image: np.ndarray, n_bins: int = 96, max_side: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Power per logarithmic period bin (energy per octave), from 2 px to half the image.

    The image (channel mean) is mean-subtracted, Hann-windowed and, when
    larger than ``max_side``, analysed on its central ``max_side`` crop
    (the spectrum of a crop has the same peaks).

    Returns
    -------
    periods : (n_bins,) float
        Bin centres in pixels (geometric).
    power : (n_bins,) float
        Fraction of the (non-DC) power in each bin; sums to 1.
    """
    x = _gray(image)
    h, w = x.shape
    if h > max_side:
        y0 = (h - max_side) // 2
        x = x[y0 : y0 + max_side]
    if w > max_side:
        x0 = (w - max_side) // 2
        x = x[:, x0 : x0 + max_side]
    h, w = x.shape
    x = (x - x.mean()) * np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    p = np.abs(np.fft.rfft2(x)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.hypot(fy, fx)
    r[0, 0] = np.inf
    period = 1.0 / r
    edges = np.geomspace(2.0, min(h, w) / 2.0, n_bins + 1)
    idx = np.digitize(period.ravel(), edges)
    power = np.bincount(idx, p.ravel(), minlength=n_bins + 2)[1 : n_bins + 1]
    power = power / max(power.sum(), 1e-30)
    return np.sqrt(edges[:-1] * edges[1:]), power


def dominant_length_scale(image: np.ndarray, max_period: float | None = None) -> float:
    """The period (pixels) where the image has most power per octave.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array
    max_period : float, optional
        Longest period considered (default a quarter of the smaller side),
        so illumination gradients and the region layout do not count.

    Returns
    -------
    float
        The peak period, refined as the power-weighted geometric mean of the
        peak bin and two bins on either side (within 2 % on lattices of
        3.5-20 px, tested).
    """
    per, pw = power_spectrum_profile(image)
    x = _gray(image)
    top = max_period or min(x.shape) / 4.0
    ok = per <= top
    if not ok.any():
        return float(per[0])
    i = int(np.argmax(np.where(ok, pw, -1.0)))
    lo, hi = max(0, i - 2), min(int(ok.sum()), i + 3)
    w = pw[lo:hi]
    return float(np.exp(np.sum(np.log(per[lo:hi]) * w) / max(w.sum(), 1e-30)))


def choose_chip(
    image: np.ndarray,
    chip: int | str | None = "auto",
    stride: int | None = None,
    *,
    periods: float = 6.0,
    min_chip: int = 16,
    max_chip: int = 128,
    min_chips_across: int = 8,
) -> ChipChoice:
    """Chip side and stride for ``image``: from its dominant length scale, or the user's.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array
        The normalized image (as from :func:`.images.prepare_images`).
    chip : int, "auto" or None
        A number is used as given (``method="user"``); ``"auto"``/``None``
        measures the image.
    stride : int, optional
        Step; default half the chip (every pixel gets 4 votes).
    periods : float
        Periods of the dominant length scale per chip side.
    min_chip, max_chip : int
        Bounds of the automatic chip (multiples of 8).
    min_chips_across : int
        At least this many chips across the smaller image side (regions
        must be resolvable), which caps the chip on small images.

    Returns
    -------
    ChipChoice
    """
    x = _gray(image)
    h, w = x.shape
    if chip not in (None, "auto"):
        c = int(chip)
        return ChipChoice(c, int(stride) if stride else max(1, c // 2), float("nan"), "user")
    scale = dominant_length_scale(x)
    want = periods * scale
    cap = min(max_chip, min(h, w) / min_chips_across)
    c = int(8 * np.round(want / 8.0))
    method = "spectrum"
    if c > cap:
        c, method = int(8 * np.floor(cap / 8.0)), "size"
    c = max(min_chip, c, 4)
    c = min(c, h, w)
    s = int(stride) if stride else max(1, c // 2)
    return ChipChoice(c, s, scale, method)
