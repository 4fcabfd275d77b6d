"""Plausibility checks shared by the APT point-cloud readers (labelled clouds too).

Below both :mod:`.apt_pointcloud` and :mod:`.apt_labels`, which import it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..aptmodel.pointcloud import PointCloud
from .apt_errors import AptFormatError

__all__ = ["MAX_COORD_NM", "MAX_MASS_DA"]


#: Largest plausible |x|, |y|, |z| in nm: a specimen is at most a few µm long.
MAX_COORD_NM = 1e4
#: Largest plausible mass-to-charge ratio in Da (spectra end well below this).
MAX_MASS_DA = 1e4


def _implausible(rec: np.ndarray, coord_scale: float) -> np.ndarray:
    """Per record: |x|, |y| or |z| beyond :data:`MAX_COORD_NM`, or m outside [0, MAX_MASS_DA]."""
    lim = np.float32(MAX_COORD_NM / coord_scale)
    m = rec[:, 3]
    return (np.abs(rec[:, :3]) > lim).any(axis=1) | (m < 0) | (m > np.float32(MAX_MASS_DA))


def _check_plausible(
    path: Path,
    cloud: PointCloud,
    lo: np.ndarray,
    hi: np.ndarray,
    mlo: float,
    mhi: float,
    where,
    coord_scale: float = 1.0,
) -> None:
    """Raise when bounds or masses are physically implausible (not an APT file, or a wrong format).

    ``lo``/``hi`` are the xyz bounds and ``mlo``/``mhi`` the mass range (file
    units; ``coord_scale`` nm per unit); ``where(ion, column)`` gives the
    error location of the first offending ion, which is searched only when
    a bound is off.
    """
    lim = MAX_COORD_NM / coord_scale
    if (
        max(abs(float(np.min(lo))), abs(float(np.max(hi)))) <= lim
        and 0 <= mlo
        and mhi <= MAX_MASS_DA
    ):
        return
    for a, b in cloud.chunks():
        rec = cloud.native_records(a, b)
        bad = np.flatnonzero(_implausible(rec, coord_scale))
        if len(bad):
            i = int(bad[0])
            r = rec[i]
            if (np.abs(r[:3]) > np.float32(lim)).any():
                col = int(np.flatnonzero(np.abs(r[:3]) > np.float32(lim))[0])
                what = (
                    f"{'xyz'[col]} = {float(r[col]) * coord_scale:.3g} nm for ion {a + i} is not "
                    f"a plausible position (|x|, |y|, |z| <= {MAX_COORD_NM:g} nm)"
                )
            else:
                col = 3
                what = (
                    f"mass-to-charge {float(r[3]):.3g} Da for ion {a + i} is not plausible "
                    f"(0 to {MAX_MASS_DA:g} Da)"
                )
            raise AptFormatError(
                path, what + "; not this format or a corrupt file", **where(a + i, col)
            )
    return  # pragma: no cover - bounds said otherwise


def _check_cloud(path: Path, cloud: PointCloud, where) -> None:
    """Plausibility of a cloud read by a non-record reader (csv, .apt sections)."""
    b = cloud.bounds()
    lo = np.array([b[a][0] for a in "xyz"])
    hi = np.array([b[a][1] for a in "xyz"])
    mlo, mhi = cloud.mass_range()
    _check_plausible(path, cloud, lo, hi, mlo, mhi, where)
