"""1D composition profile along a cylinder (a line with a radius).

The napari way: draw a line in a Shapes layer (world coordinates z, y, x in
nm) and give a radius; atoms within ``radius`` of the segment (measured
perpendicular to it) are binned by their position along it, from the start
point. Counting-statistics error bars as in the proxigram.
"""

from __future__ import annotations

import numpy as np

from .proxigram import Proxigram

__all__ = ["cylinder_profile", "line_from_shape"]


def line_from_shape(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last vertex of a napari line/path (z, y, x world) -> (start, end) as x, y, z."""
    v = np.asarray(vertices, float)
    if v.ndim != 2 or len(v) < 2 or v.shape[1] < 3:
        raise ValueError("draw a 3D line (two points) in the Shapes layer")
    return v[0, -3:][::-1], v[-1, -3:][::-1]


def cylinder_profile(
    atoms, start_xyz, end_xyz, radius_nm: float = 2.0, bin_nm: float = 0.5
) -> Proxigram:
    """Composition vs distance along ``start -> end`` within ``radius_nm`` (nm).

    Returns a :class:`~napari_interfaces.apt.proxigram.Proxigram` whose
    ``distance_nm`` is the position along the cylinder axis (``phase`` = 0).
    """
    a = np.asarray(start_xyz, float)
    b = np.asarray(end_xyz, float)
    axis = b - a
    length = float(np.linalg.norm(axis))
    if length <= 0:
        raise ValueError("the cylinder's start and end points coincide")
    if radius_nm <= 0 or bin_nm <= 0:
        raise ValueError("radius and bin size must be positive")
    u = axis / length
    rel = atoms.xyz.astype(np.float64) - a
    t = rel @ u
    r2 = np.einsum("ij,ij->i", rel, rel) - t * t
    sel = (t >= 0) & (t <= length) & (r2 <= radius_nm**2)
    nb = max(1, int(np.ceil(length / bin_nm)))
    b_idx = np.minimum((t[sel] / bin_nm).astype(np.int64), nb - 1)
    n_el = len(atoms.elements)
    counts = np.bincount(
        b_idx * n_el + atoms.element[sel].astype(np.int64), minlength=nb * n_el
    ).reshape(nb, n_el)
    centres = (np.arange(nb) + 0.5) * bin_nm
    return Proxigram(centres, counts, list(atoms.elements), 0, bin_nm)
