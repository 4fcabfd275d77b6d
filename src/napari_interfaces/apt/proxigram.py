"""Proximity histogram (proxigram): composition vs signed distance to an interface.

The interface is the boundary of a reference phase in a Labels volume. A
voxel signed-distance field (nm, positive inside the reference phase,
measured to the nearest voxel of any *other* phase, so the specimen's outer
surface is not an interface) is smoothed with a half-voxel Gaussian within
about two voxels of the interface (which removes the voxel staircase of
tilted or curved boundaries without lowering the ridges of the distance
field between close interfaces) and interpolated
trilinearly at **every atom** (not only voxel centres). Atoms are then binned
by distance; per bin and element the composition is ``c = n / N`` with the
counting-statistics (binomial) error ``sqrt(c (1 - c) / N)``.

Honest statistics in sparse bins
--------------------------------
Deep bins inside small precipitates hold a handful of atoms, where the
binomial error is wrong (a bin of 2 Cr atoms would read 100 ± 0 at.%). The
interval reported and plotted is therefore the **Wilson score interval**
(``z = 1``, the 68 % interval matching ± 1 standard error): with
``p = c``, ``centre = (p + z²/2N) / (1 + z²/N)`` and half width
``z sqrt(p (1 - p) / N + z² / 4N²) / (1 + z²/N)``. It is never zero-width
at 0 or 100 % (2 of 2 atoms gives 100 % with 67-100 %). Bins with fewer
than :data:`MIN_BIN_ATOMS` atoms are flagged (``low_count`` in the CSV,
open grey markers in the plot, said in the legend); their compositions are
kept, not dropped, so no counts are lost.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.geometry import Grid

__all__ = [
    "MIN_BIN_ATOMS",
    "wilson_interval",
    "ParticleProfiles",
    "Proxigram",
    "default_reference_phase",
    "particle_profiles",
    "proxigram",
    "signed_distance_field",
]


#: Bins with fewer atoms are flagged as low-count (CSV ``low_count``, open markers).
MIN_BIN_ATOMS = 10


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (fractions 0..1) for ``k`` successes of ``n``; NaN where ``n = 0``.

    >>> lo, hi = wilson_interval(np.array([2, 0]), np.array([2, 10]))
    >>> [round(float(v), 3) for v in lo], [round(float(v), 3) for v in hi]
    ([0.667, 0.0], [1.0, 0.091])
    """
    k = np.asarray(k, np.float64)
    n = np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
        lo = np.clip(centre - half, 0.0, 1.0)
        hi = np.clip(centre + half, 0.0, 1.0)
    bad = ~(n > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


@dataclass
class Proxigram:
    """Composition per distance bin.

    Attributes
    ----------
    distance_nm : (B,) bin centres
    counts : (B, E) atoms per element and bin
    elements : list of str
    phase : reference phase label (distance positive inside it)
    """

    distance_nm: np.ndarray
    counts: np.ndarray
    elements: list[str]
    phase: int
    bin_nm: float
    min_atoms: int = MIN_BIN_ATOMS

    @property
    def low_count(self) -> np.ndarray:
        """(B,) bool: bins with atoms but fewer than ``min_atoms``."""
        return (self.total > 0) & (self.total < self.min_atoms)

    @property
    def wilson_pct(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, E) lower and upper 68 % Wilson bounds (at.%), never zero-width at 0/100 %."""
        lo, hi = wilson_interval(self.counts, self.total[:, None])
        return 100.0 * lo, 100.0 * hi

    @property
    def total(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    @property
    def at_pct(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * self.counts / self.total[:, None]

    @property
    def err_pct(self) -> np.ndarray:
        n = self.total[:, None].astype(np.float64)
        c = self.counts / np.where(n > 0, n, np.nan)
        with np.errstate(invalid="ignore"):
            return 100.0 * np.sqrt(c * (1 - c) / n)

    def columns(self) -> list[str]:
        cols = ["distance_nm"]
        for e in self.elements:
            cols += [f"{e}_at%", f"{e}_err_at%", f"{e}_wilson_lo_at%", f"{e}_wilson_hi_at%"]
        return cols + ["low_count", "n_atoms"]

    def rows(self) -> list[list[float]]:
        pct, err = self.at_pct, self.err_pct
        lo, hi = self.wilson_pct
        low = self.low_count
        out = []
        for b, d in enumerate(self.distance_nm):
            if self.total[b] <= 0:
                continue
            row = [round(float(d), 4)]
            for i in range(len(self.elements)):
                row += [
                    round(float(pct[b, i]), 4),
                    round(float(err[b, i]), 4),
                    round(float(lo[b, i]), 4),
                    round(float(hi[b, i]), 4),
                ]
            out.append(row + [int(low[b]), int(self.total[b])])
        return out

    def to_csv(self, path: str | Path) -> Path:
        """Write ``distance_nm``; per element at.%, its binomial error and the 68 % Wilson
        bounds; ``low_count`` (1 for bins with fewer than ``min_atoms`` atoms, whose
        numbers are kept but unreliable); ``n_atoms``. A comment-free header row."""
        path = Path(path)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(self.columns())
            w.writerows(self.rows())
        return path

    def plot(self, ax=None, elements: list[str] | None = None, title: str | None = None):
        """Plot at.% vs distance with 68 % Wilson error bars on a matplotlib axes;
        bins with fewer than ``min_atoms`` atoms as open markers (said in the legend)."""
        if ax is None:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 3.5))
        pct = self.at_pct
        lo, hi = self.wilson_pct
        ok = self.total > 0
        good = ok & ~self.low_count
        low = self.low_count
        for i, e in enumerate(self.elements):
            if elements and e not in elements:
                continue
            yerr = np.stack([pct[:, i] - lo[:, i], hi[:, i] - pct[:, i]])
            line = ax.errorbar(
                self.distance_nm[good],
                pct[good, i],
                yerr=yerr[:, good],
                label=e,
                capsize=2,
                lw=1,
            )
            if low.any():
                col = line[0].get_color()
                ax.errorbar(
                    self.distance_nm[low],
                    pct[low, i],
                    yerr=yerr[:, low],
                    fmt="o",
                    mfc="none",
                    mec=col,
                    ecolor="0.6",
                    ms=4,
                    capsize=2,
                    lw=0.8,
                )
        if low.any():
            ax.plot(
                [],
                [],
                "o",
                mfc="none",
                mec="0.4",
                ms=4,
                label=f"< {self.min_atoms} atoms/bin ({int(low.sum())} bins)",
            )
        ax.axvline(0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel(f"distance to interface (nm), + inside phase {self.phase}")
        ax.set_ylabel("concentration (at.%)")
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title, fontsize=9)
        return ax


def default_reference_phase(labels: np.ndarray) -> int:
    """The smallest phase (a precipitate or the minority layer)."""
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    present = [k for k in range(1, len(sizes)) if sizes[k] > 0]
    if len(present) < 2:
        raise ValueError("no interface: the labels contain fewer than two phases")
    return int(min(present, key=lambda k: sizes[k]))


def signed_distance_field(
    labels: np.ndarray, grid: Grid, phase: int, smooth_vox: float = 1.0
) -> np.ndarray:
    """Signed distance (nm) to the boundary between ``phase`` and the other phases.

    Positive inside ``phase``. Outside the specimen (label 0) the field takes
    the value of the nearest specimen voxel.
    """
    from scipy import ndimage

    spacing = tuple(float(s) for s in grid.spacing)
    inside = labels == phase
    other = (labels > 0) & ~inside
    if not inside.any() or not other.any():
        raise ValueError(f"phase {phase} has no interface with another phase")
    half = 0.5 * min(spacing)
    d_in = ndimage.distance_transform_edt(~other, sampling=spacing) - half
    d_out = ndimage.distance_transform_edt(~inside, sampling=spacing) - half
    sdf = np.where(inside, d_in, -d_out).astype(np.float32)
    void = labels == 0
    if void.any():
        idx = ndimage.distance_transform_edt(void, return_distances=False, return_indices=True)
        sdf = sdf[tuple(idx)]
    if smooth_vox > 0:
        # smooth only near the interface (removes the voxel staircase there);
        # far away, smoothing would lower the ridges of the distance field
        sm = ndimage.gaussian_filter(sdf, smooth_vox, mode="nearest")
        h = float(min(spacing))
        w = np.clip(2.0 - np.abs(sdf) / (1.5 * h), 0.0, 1.0)
        sdf = (w * sm + (1 - w) * sdf).astype(np.float32)
    return sdf


def atom_distances(
    sdf: np.ndarray, grid: Grid, xyz: np.ndarray, chunk: int = 2_000_000
) -> np.ndarray:
    """Trilinear interpolation of a zyx field at atoms ``xyz`` (x, y, z nm)."""
    from scipy import ndimage

    o = np.asarray(grid.origin, np.float64)
    s = np.asarray(grid.spacing, np.float64)
    out = np.empty(len(xyz), np.float32)
    for a in range(0, len(xyz), chunk):
        p = np.asarray(xyz[a : a + chunk], np.float64)[:, ::-1]
        idx = ((p - o) / s).T
        out[a : a + chunk] = ndimage.map_coordinates(sdf, idx, order=1, mode="nearest")
    return out


def proxigram(
    labels: np.ndarray,
    grid: Grid,
    atoms,
    phase: int | None = None,
    bin_nm: float = 0.25,
    range_nm: tuple[float, float] = (-5.0, 5.0),
    smooth_vox: float = 0.5,
    inside_labels: bool = True,
) -> Proxigram:
    """Proxigram of ``atoms`` (:class:`~napari_interfaces.apt.volume.AtomSet`)
    about the boundary of ``phase`` (default: the smallest phase).

    Atoms in voxels outside the specimen labels (0) are ignored when
    ``inside_labels``.
    """
    labels = np.asarray(labels)
    if phase is None:
        phase = default_reference_phase(labels)
    if bin_nm <= 0:
        raise ValueError("bin_nm must be positive")
    sdf = signed_distance_field(labels, grid, phase, smooth_vox)
    d = atom_distances(sdf, grid, atoms.xyz)
    keep = np.ones(len(d), bool)
    if inside_labels:
        o = np.asarray(grid.origin)
        s = np.asarray(grid.spacing)
        idx = np.rint((atoms.zyx().astype(np.float64) - o) / s).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.asarray(labels.shape)), axis=1)
        keep[ok] = labels[tuple(idx[ok].T)] > 0
        keep &= ok
    edges = np.arange(range_nm[0], range_nm[1] + bin_nm / 2, bin_nm)
    centres = 0.5 * (edges[1:] + edges[:-1])
    nb = len(centres)
    b = np.floor((d[keep] - edges[0]) / bin_nm).astype(np.int64)
    el = atoms.element[keep].astype(np.int64)
    ok = (b >= 0) & (b < nb)
    n_el = len(atoms.elements)
    counts = np.bincount(b[ok] * n_el + el[ok], minlength=nb * n_el).reshape(nb, n_el)
    return Proxigram(centres, counts.astype(np.int64), list(atoms.elements), int(phase), bin_nm)


@dataclass
class ParticleProfiles:
    """Proxigrams of many small precipitates, each about its own interface.

    Attributes
    ----------
    distance_nm : (B,) bin centres (positive inside the precipitate)
    counts : (P, B, E) atoms per particle, bin and element
    elements : list of str
    particles : list of dict, one per particle: ``particle`` (id 1..P),
        ``n_voxels``, ``volume_nm3``, ``radius_nm`` (equivalent sphere),
        ``x_nm``/``y_nm``/``z_nm`` (centroid), ``n_core_atoms``, ``core`` and
        ``core_err`` (element -> at.% of the atoms deeper than ``core_nm``,
        counting error)
    core_nm : depth (nm) beyond which atoms count as core
    """

    distance_nm: np.ndarray
    counts: np.ndarray
    elements: list[str]
    particles: list[dict]
    core_nm: float
    bin_nm: float

    def average(self, min_radius_nm: float = 0.0) -> Proxigram:
        """The proxigram summed over the particles (of radius >= ``min_radius_nm``);
        its ``err_pct`` is the counting error of the summed counts."""
        keep = [i for i, p in enumerate(self.particles) if p["radius_nm"] >= min_radius_nm]
        c = self.counts[keep].sum(axis=0) if keep else np.zeros(self.counts.shape[1:], np.int64)
        return Proxigram(self.distance_nm, c, list(self.elements), 0, self.bin_nm)

    def spread_pct(self, min_atoms: int = 20) -> np.ndarray:
        """Particle-to-particle standard error (at.%, (B, E)) of the per-particle
        compositions, over the particles with at least ``min_atoms`` atoms in a bin
        (NaN with fewer than two)."""
        n = self.counts.sum(axis=2)  # (P, B)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = 100.0 * self.counts / n[..., None]
        c[n < min_atoms] = np.nan
        m = (n >= min_atoms).sum(axis=0)[:, None].astype(float)
        with np.errstate(invalid="ignore"):
            sd = (
                np.nanstd(c, axis=0, ddof=1)
                if self.counts.shape[0] > 1
                else np.full(c.shape[1:], np.nan)
            )
        return np.where(m >= 2, sd / np.sqrt(np.maximum(m, 1)), np.nan)


def particle_profiles(
    labels: np.ndarray,
    grid: Grid,
    atoms,
    phase: int,
    bin_nm: float = 0.25,
    range_nm: tuple[float, float] = (-3.0, 3.0),
    core_nm: float = 0.5,
    reach_nm: float | None = None,
    smooth_vox: float = 0.5,
) -> ParticleProfiles:
    """Per-precipitate proxigrams and core compositions.

    Each connected piece of ``phase`` is one particle. Every atom belongs to
    the particle whose voxels are nearest (a Voronoi partition of the
    specimen between the particles) and its distance is the signed distance
    to the phase boundary (:func:`signed_distance_field`), i.e. to its own
    particle's interface for atoms nearer to it than to any other. Atoms
    farther than ``reach_nm`` (default ``-range_nm[0]``) outside every
    particle are left out. The core composition of a particle is that of its
    atoms deeper than ``core_nm``.
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    spacing = np.asarray(grid.spacing, float)
    pieces, n = ndimage.label(labels == phase)
    edges = np.arange(range_nm[0], range_nm[1] + bin_nm / 2, bin_nm)
    centres = 0.5 * (edges[1:] + edges[:-1])
    n_el = len(atoms.elements)
    if n == 0:
        z = np.zeros((0, len(centres), n_el), np.int64)
        return ParticleProfiles(centres, z, list(atoms.elements), [], core_nm, bin_nm)
    reach = -range_nm[0] if reach_nm is None else reach_nm
    sdf = signed_distance_field(labels, grid, phase, smooth_vox)
    idx = ndimage.distance_transform_edt(
        pieces == 0, sampling=spacing, return_distances=False, return_indices=True
    )
    owner = pieces[tuple(idx)]
    d = atom_distances(sdf, grid, atoms.xyz)
    o = np.asarray(grid.origin, float)
    vi = np.rint((atoms.zyx().astype(np.float64) - o) / spacing).astype(np.int64)
    ok = np.all((vi >= 0) & (vi < np.asarray(labels.shape)), axis=1)
    ok[ok] = labels[tuple(vi[ok].T)] > 0
    pid = np.zeros(len(d), np.int64)
    pid[ok] = owner[tuple(vi[ok].T)]
    ok &= (pid > 0) & (d >= -reach)
    el = atoms.element.astype(np.int64)
    b = np.floor((d - edges[0]) / bin_nm).astype(np.int64)
    inb = ok & (b >= 0) & (b < len(centres))
    nb = len(centres)
    key = ((pid[inb] - 1) * nb + b[inb]) * n_el + el[inb]
    counts = np.bincount(key, minlength=n * nb * n_el).reshape(n, nb, n_el)
    core = ok & (d >= core_nm)
    cc = np.bincount((pid[core] - 1) * n_el + el[core], minlength=n * n_el).reshape(n, n_el)
    vox = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    vvox = float(np.prod(spacing))
    zyx_c = ndimage.center_of_mass(np.ones_like(pieces), pieces, range(1, n + 1))
    parts = []
    for k in range(n):
        N = float(cc[k].sum())
        c = cc[k] / N if N else np.zeros(n_el)
        err = np.sqrt(c * (1 - c) / N) if N else np.zeros(n_el)
        cz = o + np.asarray(zyx_c[k]) * spacing
        parts.append(
            {
                "particle": k + 1,
                "n_voxels": int(vox[k]),
                "volume_nm3": round(float(vox[k] * vvox), 3),
                "radius_nm": round(float((3 * vox[k] * vvox / (4 * np.pi)) ** (1 / 3)), 3),
                "x_nm": round(float(cz[2]), 3),
                "y_nm": round(float(cz[1]), 3),
                "z_nm": round(float(cz[0]), 3),
                "n_core_atoms": int(N),
                "core": {e: round(100 * float(c[i]), 3) for i, e in enumerate(atoms.elements)},
                "core_err": {
                    e: round(100 * float(err[i]), 3) for i, e in enumerate(atoms.elements)
                },
            }
        )
    return ParticleProfiles(
        centres, counts.astype(np.int64), list(atoms.elements), parts, core_nm, bin_nm
    )
