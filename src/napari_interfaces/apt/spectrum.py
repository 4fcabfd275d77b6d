"""Mass spectrum: histogram of mass-to-charge ratios, and a plot with ranges shaded.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.apt.spectrum import mass_spectrum
>>> edges, counts = mass_spectrum(np.array([1.0, 1.02, 2.5], "f4"), bin_width=0.05, mass_max=3)
>>> int(counts.sum()), len(edges) - 1 == len(counts)
(3, True)
"""

from __future__ import annotations

import numpy as np

from ..aptmodel.pointcloud import CHUNK_IONS
from ..aptmodel.ranging import RangeTable

__all__ = ["mass_spectrum", "plot_spectrum"]


def mass_spectrum(
    mass: np.ndarray,
    bin_width: float = 0.05,
    mass_max: float | None = None,
    chunk_size: int = CHUNK_IONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of ``mass`` (Da) from 0 to ``mass_max`` in ``bin_width`` bins (chunked).

    Returns
    -------
    edges : ndarray (n_bins + 1,)
    counts : ndarray int64 (n_bins,)
    """
    if bin_width <= 0:
        raise ValueError("bin_width must be positive")
    if mass_max is None:
        mass_max = 0.0
        for s in range(0, len(mass), chunk_size):
            mass_max = max(mass_max, float(np.max(mass[s : s + chunk_size])))
        mass_max = max(mass_max, bin_width)
    n_bins = int(np.ceil(mass_max / bin_width))
    counts = np.zeros(n_bins, dtype=np.int64)
    for s in range(0, len(mass), chunk_size):
        m = np.asarray(mass[s : s + chunk_size], dtype=np.float64)
        i = np.floor(m / bin_width).astype(np.int64)
        i = i[(i >= 0) & (i < n_bins)]
        counts += np.bincount(i, minlength=n_bins)
    return np.arange(n_bins + 1) * bin_width, counts


def plot_spectrum(
    ax,
    edges: np.ndarray,
    counts: np.ndarray,
    ranges: RangeTable | None = None,
    log: bool = True,
    label_ranges: bool = True,
) -> None:
    """Draw the spectrum on a matplotlib ``ax`` with each range shaded in its colour."""
    ax.clear()
    y = np.maximum(counts, 0.8) if log else counts
    ax.step(edges[:-1], y, where="post", color="k", lw=0.6)
    if log:
        ax.set_yscale("log")
    if ranges is not None:
        seen = set()
        for r in ranges.ranges:
            color = ranges.color_of(r.ion)
            ax.axvspan(
                r.lo, r.hi, color=color, alpha=0.35, lw=0, label=None if r.ion in seen else r.ion
            )
            seen.add(r.ion)
        if label_ranges and seen:
            ax.legend(fontsize="small", ncol=2, loc="upper right")
    ax.set_xlabel("mass-to-charge ratio (Da)")
    ax.set_ylabel("counts")
    ax.set_xlim(edges[0], edges[-1])
