"""Synthetic APT specimens with known ground truth.

An fcc Ni–Al–Cr alloy (lattice built with ase, a = 0.352 nm) holds
L1_2-ordered γ′ precipitates (Ni3(Al,Cr): Al and Cr on the cube-corner
sublattice) in a disordered γ matrix, in one of three interface geometries:

``layered``
    Plates normal to z (``period_nm`` apart, ``thickness_nm`` thick).
``isolated``
    Spherical precipitates of ``radius_nm`` at random non-overlapping centres.
``interconnected``
    Two interpenetrating networks: the gyroid level set
    ``sin X cos Y + sin Y cos Z + sin Z cos X = 0`` with period ``period_nm``
    (random phase per seed).

Across every interface the composition follows a known diffuse profile of
the **signed distance** ``d`` to the interface (nm, ``d > 0`` inside the
precipitate):

    f(d) = ½ (1 + erf(2 erfinv(0.8) d / w)),   c(d) = c_γ + f(d) (c_γ′ − c_γ)

so ``w = width_nm`` is the 10–90 % width. For ``interconnected`` ``d`` is
the first-order distance ``g / |∇g|`` (exact at the interface).

The instrument is then applied: detection efficiency (each atom kept with
that probability), anisotropic Gaussian position noise (lateral x, y larger
than depth z), a mass spectrum with natural isotopes, charge states, finite
mass resolution and thermal tails, plus uniform background ions, so ranging
matters. Everything is drawn from one ``numpy.random.default_rng(seed)``.

Examples
--------
>>> from napari_interfaces.apt.synthetic import synthesize
>>> s = synthesize("layered", size_nm=(6, 6, 12), seed=1)
>>> s.cloud.n_ions, s.ranges.elements
(21811, ['Ni', 'Al', 'Cr'])
>>> round(float(s.true_profile(0.0, "Al")), 3)   # halfway between γ and γ′
12.0
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..aptmodel.elements import ISOTOPES
from ..aptmodel.pointcloud import PointCloud
from ..aptmodel.ranging import Range, RangeTable
from ..core.geometry import Grid
from ..core.progress import Progress, as_progress

#: Shortest plate or network period (nm): a few lattice planes.
MIN_PERIOD_NM = 1.0

__all__ = [
    "GEOMETRIES",
    "PARTICLE_GEOMETRIES",
    "synthesize_particles",
    "ELEMENTS",
    "MATRIX",
    "PRECIPITATE",
    "SyntheticAPT",
    "synthesize",
    "profile_fraction",
]

GEOMETRIES = ("layered", "isolated", "interconnected")
#: Geometries of :func:`synthesize_particles` (Fe–Cr–Ni–Cu, bcc, particles of many sizes).
PARTICLE_GEOMETRIES = ("precipitates", "clusters", "boundary")
#: Elements of the synthetic alloy, in the order of ``columns["true_element"]``.
ELEMENTS = ("Ni", "Al", "Cr")
#: γ matrix composition (atomic fractions), disordered fcc.
MATRIX = {"Ni": 0.80, "Al": 0.05, "Cr": 0.15}
#: γ′ precipitate composition (atomic fractions), L1_2: Al and Cr on the corner sublattice.
PRECIPITATE = {"Ni": 0.75, "Al": 0.19, "Cr": 0.06}
LATTICE_NM = 0.352

#: Charge-state fractions per element (Al+ is left out: it would overlap Cr54++ at 27 Da).
CHARGE_STATES = {"Ni": {2: 0.85, 1: 0.15}, "Al": {2: 0.75, 3: 0.25}, "Cr": {2: 0.9, 1: 0.1}}
COLORS = {
    "Ni": "#33cc33",
    "Al": "#3366ff",
    "Cr": "#ff33cc",
    "Fe": "#a0a0a0",
    "Cu": "#ff8800",
}

_ERFINV_08 = 0.9061938024368232  # erfinv(0.8)


def profile_fraction(d: np.ndarray | float, width_nm: float) -> np.ndarray:
    """Precipitate fraction ``f(d)`` (0 in γ, 1 in γ′); ``width_nm`` is the 10–90 % width."""
    from scipy.special import erf

    d = np.asarray(d, dtype=np.float64)
    if width_nm <= 0:
        return (d > 0).astype(np.float64)
    return 0.5 * (1.0 + erf(2.0 * _ERFINV_08 * d / width_nm))


@dataclass
class SyntheticAPT:
    """A synthetic specimen: the measured cloud, its ranges, and the truth.

    Attributes
    ----------
    cloud : PointCloud
        Detected ions (positions with noise, masses with peak shapes and
        background). Truth per ion in ``cloud.columns``: ``true_element``
        (int8 index into :data:`ELEMENTS`, ``-1`` for background ions),
        ``true_phase`` (uint8, 1 = γ′ at the true atom position),
        ``signed_distance_nm`` (float32, at the true position).
    ranges : RangeTable
        One range per isotope/charge-state peak.
    geometry : str
    params : dict
        Everything needed to regenerate (seed included) and the geometry
        (``centres_nm`` for isolated, ``plate_centres_z_nm`` for layered,
        ``phase`` for interconnected).
    box_nm : dict
        ``{"x": (lo, hi), "y": ..., "z": ...}`` of the specimen box.
    """

    cloud: PointCloud
    ranges: RangeTable
    geometry: str
    params: dict[str, Any]
    box_nm: dict[str, tuple[float, float]]
    matrix: dict[str, float] = field(default_factory=lambda: dict(MATRIX))
    precipitate: dict[str, float] = field(default_factory=lambda: dict(PRECIPITATE))

    @property
    def width_nm(self) -> float:
        return float(self.params["width_nm"])

    @property
    def elements(self) -> list[str]:
        """Elements of the alloy, in the order of ``columns["true_element"]``."""
        return list(self.params.get("elements", ELEMENTS))

    # ------------------------------------------------------------------ truth
    def signed_distance(self, xyz: np.ndarray) -> np.ndarray:
        """Signed distance (nm) to the nearest interface; ``> 0`` inside γ′.

        ``xyz`` has columns x, y, z in nm (shape ``(n, 3)``).
        """
        return _signed_distance(self.geometry, self.params, np.asarray(xyz, dtype=np.float64))

    def true_profile(self, d: np.ndarray | float, element: str | None = None):
        """True composition (at.%) versus signed distance ``d`` (nm).

        Returns an array for one ``element``, else a dict element -> array.
        """
        f = profile_fraction(d, self.width_nm)
        out = {
            el: 100.0 * (self.matrix[el] + f * (self.precipitate[el] - self.matrix[el]))
            for el in self.elements
        }
        return out[element] if element is not None else out

    def default_grid(
        self, voxel_size: float | Sequence[float] = 1.0
    ) -> tuple[Grid, tuple[int, int, int]]:
        """The grid :func:`~napari_interfaces.apt.voxelize.voxelize` fits to the box."""
        from .voxelize import grid_for_bounds

        # the box is half-open [lo, hi): keep a voxel edge at hi out of the grid
        return grid_for_bounds(
            {a: (lo, hi - 1e-6) for a, (lo, hi) in self.box_nm.items()}, voxel_size
        )

    def _centres(self, grid: Grid, shape: tuple[int, int, int]) -> np.ndarray:
        z, y, x = (grid.origin[a] + grid.spacing[a] * np.arange(shape[a]) for a in range(3))
        zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
        return np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])

    def distance_volume(
        self,
        grid: Grid | None = None,
        shape: tuple[int, int, int] | None = None,
        voxel_size: float | Sequence[float] = 1.0,
    ) -> tuple[np.ndarray, Grid]:
        """Signed distance (nm, float32) at voxel centres, ``(nz, ny, nx)``."""
        if grid is None or shape is None:
            grid, shape = self.default_grid(voxel_size)
        d = self.signed_distance(self._centres(grid, shape)).reshape(shape)
        return d.astype(np.float32), grid

    def phase_volume(
        self,
        grid: Grid | None = None,
        shape: tuple[int, int, int] | None = None,
        voxel_size: float | Sequence[float] = 1.0,
    ) -> tuple[np.ndarray, Grid]:
        """Ground-truth phase labels at voxel centres (uint8: 0 = γ, 1 = γ′) and the grid.

        Pass the ``(grid, shape)`` of a :class:`~napari_interfaces.apt.voxelize.VoxelCounts`
        (``vox.grid, vox.shape``) to compare voxel by voxel.
        """
        d, grid = self.distance_volume(grid, shape, voxel_size)
        return (d > 0).astype(np.uint8), grid

    # ------------------------------------------------------------------ files
    def write(
        self, out_dir: str | os.PathLike, stem: str | None = None, voxel_size: float = 1.0
    ) -> dict[str, Path]:
        """Write ``<stem>.pos``, ``<stem>.rrng``, ``<stem>_phase.tif`` (ground truth
        on the default grid), ``<stem>_profile.csv`` (true at.% vs signed
        distance) and ``<stem>_truth.json`` (parameters); returns the paths."""
        from ..io.apt_pointcloud import write_pos
        from ..io.apt_volume import write_volume_tiff
        from ..io.ranges import write_rrng

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = stem or f"synthetic_{self.geometry}_seed{self.params['seed']}"
        paths = {
            "pos": write_pos(out / f"{stem}.pos", self.cloud),
            "rrng": write_rrng(out / f"{stem}.rrng", self.ranges),
        }
        phase, grid = self.phase_volume(voxel_size=voxel_size)
        paths["phase"] = write_volume_tiff(
            out / f"{stem}_phase.tif", phase, grid, {"labels": {"0": "gamma", "1": "gamma_prime"}}
        )
        d = np.round(np.arange(-10.0, 10.0001, 0.1), 3) + 0.0  # no "-0.000"
        prof = self.true_profile(d)
        f = profile_fraction(d, self.width_nm)
        with open(out / f"{stem}_profile.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "signed_distance_nm",
                    "gamma_prime_fraction",
                    *[f"{el}_at_pct" for el in self.elements],
                ]
            )
            for i in range(len(d)):
                w.writerow(
                    [
                        f"{d[i]:.3f}",
                        f"{f[i]:.6f}",
                        *[f"{prof[el][i]:.6f}" for el in self.elements],
                    ]
                )
        paths["profile"] = out / f"{stem}_profile.csv"
        truth = {
            "geometry": self.geometry,
            "params": _jsonable(self.params),
            "box_nm": self.box_nm,
            "matrix_at_fraction": self.matrix,
            "precipitate_at_fraction": self.precipitate,
            "profile": "f(d) = 0.5*(1+erf(2*erfinv(0.8)*d/width_nm)); d>0 in precipitate",
            "phase_grid": grid.to_dict(),
        }
        (out / f"{stem}_truth.json").write_text(json.dumps(truth, indent=2))
        paths["truth"] = out / f"{stem}_truth.json"
        return paths


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ---------------------------------------------------------------------- geometry
def _signed_distance(geometry: str, p: dict[str, Any], xyz: np.ndarray) -> np.ndarray:
    if geometry == "layered":
        zc = np.asarray(p["plate_centres_z_nm"], dtype=np.float64)
        dz = np.abs(xyz[:, 2:3] - zc[None, :]).min(axis=1)
        return p["thickness_nm"] / 2.0 - dz
    if geometry == "isolated":
        from scipy.spatial import cKDTree

        centres = np.asarray(p["centres_nm"], dtype=np.float64).reshape(-1, 3)
        if len(centres) == 0:
            return np.full(len(xyz), -np.inf)
        dist, _ = cKDTree(centres).query(xyz, k=1)
        return p["radius_nm"] - dist
    if geometry == "interconnected":
        k = 2.0 * np.pi / p["period_nm"]
        ph = np.asarray(p["phase"], dtype=np.float64)
        X, Y, Z = (k * xyz[:, i] + ph[i] for i in range(3))
        sx, cx, sy, cy, sz, cz = np.sin(X), np.cos(X), np.sin(Y), np.cos(Y), np.sin(Z), np.cos(Z)
        g = sx * cy + sy * cz + sz * cx - p["level"]
        gx = k * (cx * cy - sz * sx)
        gy = k * (-sx * sy + cy * cz)
        gz = k * (-sy * sz + cz * cx)
        grad = np.sqrt(gx * gx + gy * gy + gz * gz)
        return g / np.maximum(grad, 0.25 * k)
    if geometry in PARTICLE_GEOMETRIES:
        return _sphere_distance(p, xyz)
    raise ValueError(f"unknown geometry {geometry!r}; choose one of {GEOMETRIES}")


def _sphere_distance(p: dict[str, Any], xyz: np.ndarray, ids: bool = False):
    """max_i (r_i - |x - c_i|): signed distance to the nearest of spheres of
    different radii (exact outside overlaps), ``> 0`` inside one.

    With ``ids=True`` also the sphere each point is inside of (int32, 1-based
    index into ``p["centres_nm"]``, 0 outside every sphere), from the same query.
    """
    from scipy.spatial import cKDTree

    centres = np.asarray(p["centres_nm"], dtype=np.float64).reshape(-1, 3)
    radii = np.asarray(p["radii_nm"], dtype=np.float64).reshape(-1)
    if len(centres) == 0:
        d = np.full(len(xyz), -np.inf)
        return (d, np.zeros(len(xyz), np.int32)) if ids else d
    k = min(8, len(centres))
    dist, idx = cKDTree(centres).query(xyz, k=k)
    dist, idx = dist.reshape(len(xyz), k), idx.reshape(len(xyz), k)
    di = radii[idx] - dist
    if not ids:
        return di.max(axis=1)
    rows = np.arange(len(xyz))
    j = np.argmax(di, axis=1)
    best = di[rows, j]
    return best, np.where(best > 0, idx[rows, j] + 1, 0).astype(np.int32)


def _place_spheres(
    rng: np.random.Generator, box: dict, radius: float, gap: float, n: int
) -> np.ndarray:
    lo = np.array([box[a][0] for a in "xyz"])
    hi = np.array([box[a][1] for a in "xyz"])
    centres: list[np.ndarray] = []
    for _ in range(200 * max(n, 1)):
        if len(centres) >= n:
            break
        c = lo + rng.random(3) * (hi - lo)
        if all(np.linalg.norm(c - o) >= 2 * radius + gap for o in centres):
            centres.append(c)
    return np.array(centres).reshape(-1, 3)


# ---------------------------------------------------------------------- instrument
@dataclass(frozen=True)
class _Detector:
    """The instrument of every generator: detection efficiency, reconstruction
    blur (Gaussian, lateral x, y and depth z), mass resolving power m / Δm
    (FWHM), fraction of uniform background ions."""

    efficiency: float
    noise_lateral_nm: float
    noise_depth_nm: float
    background: float
    mass_resolving_power: float

    def params(self, mass_resolving_power: bool = True) -> dict[str, float]:
        """The instrument's entries of ``SyntheticAPT.params``."""
        out = {
            "efficiency": float(self.efficiency),
            "noise_lateral_nm": float(self.noise_lateral_nm),
            "noise_depth_nm": float(self.noise_depth_nm),
            "background": float(self.background),
        }
        if mass_resolving_power:
            out["mass_resolving_power"] = float(self.mass_resolving_power)
        return out


def _instrument(
    rng: np.random.Generator,
    pos: np.ndarray,
    elem: np.ndarray,
    elements: Sequence[str],
    charge_states: dict[str, dict[int, float]],
    box: dict,
    det: _Detector,
):
    """Position noise (lateral x, y; depth z), masses (isotopes, charge states,
    peak width and thermal tail) and uniform background ions.

    Returns ``xyz`` (float32, atoms then background), masses (float32), true
    element per ion (int8, ``-1`` background), the background positions and
    the list of ``(element, m/q)`` peaks above 0.5 % isotopic abundance.
    """
    n_at = len(pos)
    lateral, depth = det.noise_lateral_nm, det.noise_depth_nm
    noisy = pos + rng.normal(size=(n_at, 3)) * np.array([lateral, lateral, depth])
    mass = np.empty(n_at, dtype=np.float64)
    peaks: list[tuple[str, float]] = []
    for k, el in enumerate(elements):
        sel = np.flatnonzero(elem == k)
        iso_m = np.array([m for m, _ in ISOTOPES[el]])
        iso_p = np.array([a for _, a in ISOTOPES[el]])
        iso_p = iso_p / iso_p.sum()
        charges = np.array(list(charge_states[el]))
        cp = np.array(list(charge_states[el].values()))
        q = charges[rng.choice(len(charges), size=len(sel), p=cp / cp.sum())]
        m = iso_m[rng.choice(len(iso_m), size=len(sel), p=iso_p)]
        mass[sel] = m / q
        for c in charges:
            for mi, ai in zip(iso_m, iso_p):
                if ai >= 0.005:
                    peaks.append((el, mi / c))
    sigma_m = mass / (2.3548 * det.mass_resolving_power)
    tail = rng.random(n_at) < 0.3
    mass = mass + rng.normal(size=n_at) * sigma_m
    mass[tail] += rng.exponential(1.0, size=int(tail.sum())) * 0.002 * mass[tail]
    n_bg = int(round(det.background * n_at / (1 - det.background)))
    bg_pos = np.column_stack([rng.uniform(*box[a], size=n_bg) for a in "xyz"])
    bg_mass = rng.uniform(1.0, 70.0, size=n_bg)
    xyz = np.concatenate([noisy, bg_pos]).astype(np.float32)
    mass_all = np.concatenate([mass, bg_mass]).astype(np.float32)
    true_el = np.concatenate([elem.astype(np.int8), np.full(n_bg, -1, np.int8)])
    return xyz, mass_all, true_el, bg_pos, peaks


def _range_table(
    peaks: list[tuple[str, float]],
    elements: Sequence[str],
    mass_resolving_power: float,
    abundance: dict[str, float] | None = None,
) -> RangeTable:
    """One range per peak, ``[m - 5 sigma, m + 5 sigma + 3 tails)``.

    Peaks of two elements at the same m/q (e.g. 54Fe++ and 54Cr++ at 27 Da)
    cannot be told apart, as in real data: with ``abundance`` (element ->
    expected fraction of the peak's ions) overlapping windows are merged
    into one range given to the element contributing more ions.
    """
    windows = []
    for el, m in sorted(peaks, key=lambda t: (list(elements).index(t[0]), t[1])):
        s = m / (2.3548 * mass_resolving_power)
        windows.append([round(m - 5 * s, 4), round(m + 5 * s + 3 * 0.002 * m, 4), el, m])
    if abundance is None:
        ranges = [Range(lo, hi, el, {el: 1}, COLORS[el]) for lo, hi, el, _ in windows]
        return RangeTable(ranges, source=None)
    windows.sort(key=lambda w: w[0])
    groups: list[list] = []
    for w in windows:
        if groups and w[0] < max(g[1] for g in groups[-1]):
            groups[-1].append(w)
        else:
            groups.append([w])
    ranges = []
    for g in groups:
        el = max(g, key=lambda w: abundance.get((w[2], round(w[3], 3)), 0.0))[2]
        lo, hi = min(w[0] for w in g), max(w[1] for w in g)
        ranges.append(Range(lo, hi, el, {el: 1}, COLORS.get(el)))
    order = sorted(ranges, key=lambda r: (list(elements).index(r.ion), r.lo))
    return RangeTable(order, source=None)


def _peak_abundance(
    elements: Sequence[str], charge_states: dict[str, dict[int, float]], matrix: dict[str, float]
) -> dict[tuple[str, float], float]:
    """Expected fraction of the ions at each ``(element, m/q)`` peak in ``matrix``."""
    abundance = {}
    for el in elements:
        iso = ISOTOPES[el]
        tot = sum(ab for _, ab in iso)
        for q, fq in charge_states[el].items():
            for m, ab in iso:
                abundance[(el, round(m / q, 3))] = matrix[el] * fq * ab / tot
    return abundance


# ---------------------------------------------------------------------- the generators
# The three generators below are one pipeline: ``_specimen`` (checks, box, the
# one random generator), geometry placement, ``_lattice_detected`` (lattice,
# detection efficiency first), species (the strategy that differs), then
# ``_acquire`` (instrument, acquisition order, ground-truth columns, ranges).
# Each step draws from the one generator in this order, so a seed gives the
# same specimen.
def _check_instrument(size_nm, efficiency: float, background: float) -> tuple[float, ...]:
    """The box size (x, y, z nm) after checking the size and the detector parameters."""
    sx, sy, sz = (float(v) for v in size_nm)
    if min(sx, sy, sz) <= 0:
        raise ValueError(f"size_nm must be positive, got {size_nm!r}")
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
    if not 0 <= background < 1:
        raise ValueError(f"background must be in [0, 1), got {background}")
    return sx, sy, sz


def _specimen(what: str, value: str, choices: Sequence[str], size_nm, det: _Detector, seed: int):
    """``(sx, sy, sz), box, rng``: the checked box size, its extent and the one generator,
    after checking that ``value`` (the ``what``: geometry or case) is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {choices}")
    sx, sy, sz = _check_instrument(size_nm, det.efficiency, det.background)
    rng = np.random.default_rng(seed)
    box = {"x": (-sx / 2, sx / 2), "y": (-sy / 2, sy / 2), "z": (0.0, sz)}
    return (sx, sy, sz), box, rng


#: Fractional basis of the cubic bcc cell.
BCC_BASIS = ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5))


def _lattice_detected(
    box: dict, size: Sequence[float], a: float, basis_frac, efficiency: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Atom positions (nm) of a cubic lattice (cell ``a`` nm, fractional
    ``basis_frac``) filling ``box``, each kept with probability ``efficiency``
    (the detection efficiency), and the basis site (int8) of each."""
    basis = np.asarray(basis_frac, dtype=np.float64) * a
    n_cells = [int(np.ceil(s / a)) for s in size]
    ii = np.stack(np.meshgrid(*[np.arange(k) for k in n_cells], indexing="ij"), -1).reshape(-1, 3)
    pos = (ii[:, None, :] * a + basis[None, :, :]).reshape(-1, 3)
    site = np.tile(np.arange(len(basis), dtype=np.int8), len(ii))
    del ii
    pos += np.array([box["x"][0], box["y"][0], box["z"][0]])
    inside = (pos[:, 0] < box["x"][1]) & (pos[:, 1] < box["y"][1]) & (pos[:, 2] < box["z"][1])
    keep = inside & (rng.random(len(pos)) < efficiency)
    return pos[keep], site[keep]


def _acquire(
    rng: np.random.Generator,
    atoms: tuple[np.ndarray, np.ndarray],
    species: tuple[Sequence[str], dict[str, dict[int, float]], dict[str, float] | None],
    box: dict,
    det: _Detector,
    truth,
    metadata: dict[str, Any],
    progress: Progress,
) -> tuple[PointCloud, RangeTable]:
    """The measured cloud and its ranges from the true atoms ``(pos, elem)``.

    ``species`` is ``(elements, charge_states, matrix)``; with a ``matrix``
    overlapping peaks go to the element contributing more ions (see
    :func:`_range_table`). ``truth(bg_pos)`` gives the ground-truth columns
    besides ``true_element`` (atoms then background ions, before the
    acquisition order).
    """
    elements, charge_states, matrix = species
    xyz, mass_all, true_el, bg_pos, peaks = _instrument(
        rng, *atoms, elements, charge_states, box, det
    )
    columns = {"true_element": true_el, **truth(bg_pos)}
    # shuffle into acquisition order along z (ions arrive from the top)
    order = np.argsort(-xyz[:, 2] + rng.normal(size=len(xyz)) * 0.5, kind="stable")
    cloud = PointCloud(
        np.ascontiguousarray(xyz[order]),
        np.ascontiguousarray(mass_all[order]),
        {k: v[order] for k, v in columns.items()},
        source=None,
        metadata=metadata,
    )
    progress.advance(description="ranges")
    abundance = None if matrix is None else _peak_abundance(elements, charge_states, matrix)
    table = _range_table(peaks, elements, det.mass_resolving_power, abundance)
    progress.advance()
    return cloud, table


def _draw_clusters(
    rng: np.random.Generator, box: dict, n: int, solutes_per_cluster: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``centres, sigma, n_solute`` of up to ``n`` solute clusters (σ = 0.45 nm · (n / 30)^⅓),
    placed at least 1 nm apart outside their 3 σ."""
    n_sol = rng.integers(solutes_per_cluster[0], solutes_per_cluster[1] + 1, size=n)
    sigma = 0.45 * (n_sol / 30.0) ** (1 / 3)
    centres, sig = _place_particles(rng, box, 3 * sigma, 1.0)
    keep_n = [int(np.flatnonzero(np.isclose(3 * sigma, s))[0]) for s in sig]
    return centres, sig / 3, n_sol[keep_n]


def _seed_clusters(rng, pos, ident, centres, sigma, n_solute):
    """Per cluster, pick its solute atoms on lattice sites drawn with a Gaussian
    weight about the centre (sites of no other cluster); sets ``ident`` and
    yields ``(i, record, picked indices)``, record the cluster's truth entry."""
    from scipy.spatial import cKDTree

    tree = cKDTree(pos)
    for i, (c, s, ns) in enumerate(zip(centres, sigma, n_solute)):
        cand = np.asarray(tree.query_ball_point(c, 3 * s), dtype=np.int64)
        cand = cand[ident[cand] == 0]
        w = np.exp(-0.5 * ((pos[cand] - c) ** 2).sum(axis=1) / s**2)
        pick = rng.choice(cand, size=min(int(ns), len(cand)), replace=False, p=w / w.sum())
        ident[pick] = i + 1
        record = {
            "id": i + 1,
            "centre_nm": c.tolist(),
            "radius_nm": float(np.sqrt(5.0) * s),
            "sigma_nm": float(s),
            "n_solute": int(len(pick)),
        }
        yield i, record, pick


def _add_compositions(
    particles: list[dict[str, Any]], ident: np.ndarray, elem: np.ndarray, elements: Sequence[str]
) -> None:
    """``n_atoms`` and ``composition`` (at.%) of the detected atoms of each particle."""
    E = len(elements)
    cnt = np.bincount(ident.astype(np.int64) * E + elem, minlength=(len(particles) + 1) * E)
    cnt = cnt.reshape(-1, E)
    for p in particles:
        c = cnt[p["id"]]
        p["n_atoms"] = int(c.sum())
        p["composition"] = {
            e: round(100.0 * float(c[k]) / max(int(c.sum()), 1), 3) for k, e in enumerate(elements)
        }


def synthesize(
    geometry: str = "layered",
    size_nm: Sequence[float] = (20.0, 20.0, 40.0),
    seed: int = 0,
    width_nm: float = 1.0,
    efficiency: float = 0.5,
    noise_lateral_nm: float = 0.3,
    noise_depth_nm: float = 0.1,
    background: float = 0.03,
    mass_resolving_power: float = 1000.0,
    radius_nm: float = 3.0,
    n_precipitates: int | None = None,
    period_nm: float | None = None,
    thickness_nm: float | None = None,
    progress: Progress | None = None,
) -> SyntheticAPT:
    """Generate a synthetic APT specimen with ground truth.

    Parameters
    ----------
    geometry : {"layered", "isolated", "interconnected"}
    size_nm : (x, y, z)
        Specimen box in nm; x, y centred on 0, z from 0 to ``size_nm[2]``.
    seed : int
        Seed of every random draw (same seed -> identical output).
    width_nm : float
        10–90 % width of the composition profile across interfaces.
    efficiency : float
        Detection efficiency in (0, 1] (e.g. 0.37 to 0.8).
    noise_lateral_nm, noise_depth_nm : float
        Standard deviation of Gaussian position noise in x, y and in z.
    background : float
        Fraction of extra ions with uniform random mass in 1–70 Da and
        uniform random position (unranged mostly, a few inside ranges).
    mass_resolving_power : float
        m / Δm (FWHM) of the peaks; peaks also have an exponential thermal tail.
    radius_nm : float
        Precipitate radius (``isolated``).
    n_precipitates : int, optional
        Number of spheres (``isolated``); default about 10 % volume fraction.
    period_nm : float, optional
        Plate period (``layered``, default ``size_z / 2``) or gyroid period
        (``interconnected``, default 10 nm).
    thickness_nm : float, optional
        Plate thickness (``layered``, default ``period / 2``).
    progress : Progress, optional

    Returns
    -------
    SyntheticAPT
    """
    from ase.build import bulk

    det = _Detector(efficiency, noise_lateral_nm, noise_depth_nm, background, mass_resolving_power)
    (sx, sy, sz), box, rng = _specimen("geometry", geometry, GEOMETRIES, size_nm, det, seed)
    progress = as_progress(progress)
    progress.start(5, "synthetic APT")

    params: dict[str, Any] = {
        "seed": int(seed),
        "size_nm": [sx, sy, sz],
        "width_nm": float(width_nm),
        **det.params(),
        "lattice_nm": LATTICE_NM,
    }
    if period_nm is not None and not MIN_PERIOD_NM <= float(period_nm) <= 4 * max(sx, sy, sz):
        from ..core.errors import ParameterError

        raise ParameterError(
            "period_nm",
            f"must be between {MIN_PERIOD_NM:g} nm (a few lattice planes) and 4x the specimen "
            f"size, got {period_nm!r}",
        )
    if geometry == "layered":
        period = float(period_nm or sz / 2)
        thick = float(thickness_nm or period / 2)
        params.update(
            period_nm=period,
            thickness_nm=thick,
            plate_centres_z_nm=list(np.arange(period / 2, sz + period, period)),
        )
    elif geometry == "isolated":
        vol = sx * sy * sz
        n = (
            n_precipitates
            if n_precipitates is not None
            else max(1, int(round(0.10 * vol / (4 / 3 * np.pi * radius_nm**3))))
        )
        inner = {a: (box[a][0] + radius_nm, box[a][1] - radius_nm) for a in "xyz"}
        if any(lo >= hi for lo, hi in inner.values()):
            inner = box
        centres = _place_spheres(rng, inner, radius_nm, 2 * width_nm, n)
        params.update(radius_nm=float(radius_nm), centres_nm=centres.tolist())
    else:
        params.update(
            period_nm=float(period_nm or 10.0), level=0.0, phase=list(rng.random(3) * 2 * np.pi)
        )
    progress.advance(description="lattice")

    # --- fcc lattice (ase unit cell tiled with numpy), detection efficiency first
    scaled = bulk("Ni", "fcc", a=LATTICE_NM * 10, cubic=True).get_scaled_positions()
    pos, site = _lattice_detected(box, (sx, sy, sz), LATTICE_NM, scaled, efficiency, rng)
    is_corner = np.all(np.isclose(scaled, 0.0), axis=1)[site]  # the cube-corner sites
    progress.advance(description="species")

    # --- species from the local precipitate fraction (L1_2 order in γ′)
    d_true = _signed_distance(geometry, params, pos)
    f = profile_fraction(d_true, width_nm)
    corner_ppt = {"Ni": 0.0, "Al": PRECIPITATE["Al"] / 0.25, "Cr": PRECIPITATE["Cr"] / 0.25}
    face_ppt = {"Ni": 1.0, "Al": 0.0, "Cr": 0.0}
    u = rng.random(len(pos))
    elem = np.zeros(len(pos), dtype=np.int8)
    cum = np.zeros(len(pos))
    for k, el in enumerate(ELEMENTS[:-1]):
        p_ppt = np.where(is_corner, corner_ppt[el], face_ppt[el])
        cum += (1 - f) * MATRIX[el] + f * p_ppt
        elem[(u >= cum - ((1 - f) * MATRIX[el] + f * p_ppt)) & (u < cum)] = k
    elem[u >= cum] = len(ELEMENTS) - 1
    progress.advance(description="instrument")

    # --- instrument: position noise, masses, background ions; ranges
    def truth(bg_pos: np.ndarray) -> dict[str, np.ndarray]:
        d_all = np.concatenate([d_true, _signed_distance(geometry, params, bg_pos)])
        return {
            "true_phase": (d_all > 0).astype(np.uint8),
            "signed_distance_nm": d_all.astype(np.float32),
        }

    metadata = {"format": "synthetic", "geometry": geometry, "seed": int(seed)}
    species = (ELEMENTS, CHARGE_STATES, None)
    cloud, table = _acquire(rng, (pos, elem), species, box, det, truth, metadata, progress)
    return SyntheticAPT(cloud, table, geometry, params, box)


# ---------------------------------------------------------------------- particles
#: Elements of :func:`synthesize_particles`, in the order of ``columns["true_element"]``.
FECR_ELEMENTS = ("Fe", "Cr", "Ni", "Cu")
FECR_LATTICE_NM = 0.2866  # bcc Fe
FECR_CHARGE_STATES = {
    "Fe": {2: 0.9, 1: 0.1},
    "Cr": {2: 0.9, 1: 0.1},
    "Ni": {2: 0.85, 1: 0.15},
    "Cu": {1: 0.5, 2: 0.5},
}
#: Ferrite matrix around Cr-rich α′ precipitates (atomic fractions).
FECR_MATRIX = {"Fe": 0.80, "Cr": 0.15, "Ni": 0.04, "Cu": 0.01}
#: α′ precipitates (Cr-rich).
FECR_PRECIPITATE = {"Fe": 0.30, "Cr": 0.65, "Ni": 0.04, "Cu": 0.01}
#: Dilute matrix of the solute-cluster specimen (Cu–Ni clusters in ferrite).
FECR_DILUTE = {"Fe": 0.891, "Cr": 0.10, "Ni": 0.007, "Cu": 0.002}
#: Ni at the centre of the segregated grain boundary (``boundary``), from 0.04.
BOUNDARY_NI = 0.12


def _place_particles(
    rng: np.random.Generator, box: dict, radii: np.ndarray, gap: float, plane=None
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping centres (``|ci - cj| >= ri + rj + gap``), each sphere
    inside ``box``; with ``plane = (point, normal)`` centres lie within a third
    of their radius of the plane. Returns the centres and the radii placed."""
    lo = np.array([box[a][0] for a in "xyz"])
    hi = np.array([box[a][1] for a in "xyz"])
    centres: list[np.ndarray] = []
    kept: list[float] = []
    for r in radii:
        for _ in range(300):
            c = lo + r + rng.random(3) * np.maximum(hi - lo - 2 * r, 1e-9)
            if plane is not None:
                p0, n = plane
                c = c - (float((c - p0) @ n) - rng.uniform(-r / 3, r / 3)) * n
                if np.any(c - r < lo) or np.any(c + r > hi):
                    continue
            if all(np.linalg.norm(c - o) >= r + ro + gap for o, ro in zip(centres, kept)):
                centres.append(c)
                kept.append(float(r))
                break
    return np.array(centres).reshape(-1, 3), np.array(kept)


def synthesize_particles(
    geometry: str = "precipitates",
    size_nm: Sequence[float] = (24.0, 24.0, 40.0),
    seed: int = 0,
    number_density_m3: float = 5e23,
    radius_nm: tuple[float, float] = (1.0, 3.0),
    n_particles: int | None = None,
    solutes_per_cluster: tuple[int, int] = (10, 50),
    width_nm: float = 0.4,
    efficiency: float = 0.37,
    noise_lateral_nm: float = 0.35,
    noise_depth_nm: float = 0.12,
    background: float = 0.02,
    mass_resolving_power: float = 1000.0,
    progress: Progress | None = None,
) -> SyntheticAPT:
    """A ferritic Fe–Cr–Ni–Cu specimen (bcc, a = 0.2866 nm) with many small particles.

    Geometries:

    ``precipitates``
        Cr-rich α′ spheres (:data:`FECR_PRECIPITATE`) of radii drawn
        uniformly in ``radius_nm`` in a Cr-poorer matrix (:data:`FECR_MATRIX`),
        diffuse interfaces of 10–90 % width ``width_nm``.
    ``clusters``
        Solute clusters: each of ``solutes_per_cluster`` (drawn, detected)
        Cu + Ni atoms placed on lattice sites drawn with a Gaussian weight
        about the centre (σ = 0.45 nm · (n / 30)^⅓), so there is no sharp
        interface; the dilute matrix is :data:`FECR_DILUTE`.
    ``boundary``
        α′ precipitates sitting on a grain boundary (a plane through the box
        centre, normal tilted 11° from z) segregated with Ni (Gaussian, σ =
        0.5 nm, :data:`BOUNDARY_NI` at its centre).

    The particle count is ``number_density_m3`` × box volume unless
    ``n_particles`` is given. The instrument is the same as :func:`synthesize`'s
    (detection efficiency first, anisotropic blur, isotopes, charge states,
    peak shapes, uniform background). The 54 Da (Fe/Cr) and 58 Da (Fe/Ni)
    isobars overlap as in real data: each merged window goes to the element
    contributing more ions.

    Ground truth per ion in ``cloud.columns``: ``true_element`` (index into
    :data:`FECR_ELEMENTS`, -1 background), ``true_cluster`` (int32, particle
    id 1..N for atoms of a precipitate (inside its sphere) or solute atoms of
    a cluster, 0 otherwise and for background ions), ``true_phase``,
    ``signed_distance_nm``. ``params["particles"]`` lists per particle the
    ``id``, ``centre_nm``, ``radius_nm`` (sphere; for clusters the Guinier
    radius √5 σ), ``n_atoms`` (detected atoms with that id), ``n_solute``
    (clusters), ``composition`` (at.% of the detected atoms with that id,
    true elements) and, for precipitates, ``core_composition`` (nominal at.%).

    Examples
    --------
    >>> from napari_interfaces.apt.synthetic import synthesize_particles
    >>> s = synthesize_particles("clusters", size_nm=(12, 12, 12), seed=1, n_particles=4)
    >>> len(s.params["particles"]), s.elements
    (4, ['Fe', 'Cr', 'Ni', 'Cu'])
    >>> all(10 <= p["n_solute"] <= 50 for p in s.params["particles"])
    True
    """
    det = _Detector(efficiency, noise_lateral_nm, noise_depth_nm, background, mass_resolving_power)
    (sx, sy, sz), box, rng = _specimen(
        "geometry", geometry, PARTICLE_GEOMETRIES, size_nm, det, seed
    )
    progress = as_progress(progress)
    progress.start(5, f"synthetic APT ({geometry})")
    n = (
        int(n_particles)
        if n_particles is not None
        else max(1, int(round(number_density_m3 * sx * sy * sz * 1e-27)))
    )
    elements = list(FECR_ELEMENTS)
    clusters = geometry == "clusters"
    matrix = dict(FECR_DILUTE if clusters else FECR_MATRIX)
    particle = dict(FECR_PRECIPITATE)
    plane = None
    if clusters:
        centres, sigma, n_sol = _draw_clusters(rng, box, n, solutes_per_cluster)
        radii = np.sqrt(5.0) * sigma
    else:
        radii = rng.uniform(radius_nm[0], radius_nm[1], size=n)
        if geometry == "boundary":
            normal = np.array([0.2, 0.0, 1.0]) / np.hypot(0.2, 1.0)
            plane = (np.array([0.0, 0.0, sz / 2]), normal)
        centres, radii = _place_particles(rng, box, radii, 2 * width_nm, plane)
    params: dict[str, Any] = {
        "seed": int(seed),
        "size_nm": [sx, sy, sz],
        "elements": elements,
        "width_nm": float(width_nm),
        **det.params(),
        "lattice_nm": FECR_LATTICE_NM,
        "number_density_m3": len(centres) / (sx * sy * sz * 1e-27),
        "centres_nm": centres.tolist(),
        "radii_nm": radii.tolist(),
    }
    if plane is not None:
        params["boundary_point_nm"] = plane[0].tolist()
        params["boundary_normal"] = plane[1].tolist()
    progress.advance(description="lattice")

    # --- bcc lattice, detection efficiency first
    pos = _lattice_detected(box, (sx, sy, sz), FECR_LATTICE_NM, BCC_BASIS, efficiency, rng)[0]
    progress.advance(description="species")

    # --- species
    E = len(elements)
    mvec = np.array([matrix[e] for e in elements])
    ident = np.zeros(len(pos), np.int32)
    if clusters:
        P = np.broadcast_to(mvec, (len(pos), E))
        d_true = np.full(len(pos), -np.inf)
    else:
        d_true, ident = _sphere_distance(params, pos, ids=True)
        f = profile_fraction(d_true, width_nm)[:, None]
        P = (1 - f) * mvec[None] + f * np.array([particle[e] for e in elements])[None]
        if plane is not None:
            g = np.exp(-0.5 * (((pos - plane[0]) @ plane[1]) / 0.5) ** 2) * (1 - f[:, 0])
            extra = (BOUNDARY_NI - matrix["Ni"]) * g
            P = P.copy()
            P[:, elements.index("Ni")] += extra
            P[:, elements.index("Fe")] -= extra
    u = rng.random(len(pos))
    elem = (u[:, None] >= np.cumsum(P, axis=1)[:, :-1]).sum(axis=1).astype(np.int8)
    particles: list[dict[str, Any]] = []
    if clusters and len(centres):
        cu, ni = elements.index("Cu"), elements.index("Ni")
        for _, record, pick in _seed_clusters(rng, pos, ident, centres, sigma, n_sol):
            cu_frac = rng.uniform(0.4, 0.8)
            elem[pick] = np.where(rng.random(len(pick)) < cu_frac, cu, ni)
            d_true[pick] = 0.0
            particles.append({**record, "cu_fraction_of_solute": float(cu_frac)})
    else:
        for i, (c, r) in enumerate(zip(centres, radii)):
            particles.append(
                {
                    "id": i + 1,
                    "centre_nm": c.tolist(),
                    "radius_nm": float(r),
                    "core_composition": {e: 100.0 * particle[e] for e in elements},
                }
            )
    _add_compositions(particles, ident, elem, elements)
    params["particles"] = particles
    progress.advance(description="instrument")

    def truth(bg_pos: np.ndarray) -> dict[str, np.ndarray]:
        if clusters:
            d_bg = np.full(len(bg_pos), -np.inf)
        else:
            d_bg = _sphere_distance(params, bg_pos)
        d_all = np.concatenate([d_true, d_bg])
        ident_all = np.concatenate([ident, np.zeros(len(bg_pos), np.int32)])
        phase = ident_all > 0 if clusters else d_all > 0
        return {
            "true_cluster": ident_all,
            "true_phase": phase.astype(np.uint8),
            "signed_distance_nm": d_all.astype(np.float32),
        }

    metadata = {"format": "synthetic", "geometry": geometry, "seed": int(seed)}
    species = (elements, FECR_CHARGE_STATES, matrix)
    cloud, table = _acquire(rng, (pos, elem), species, box, det, truth, metadata, progress)
    return SyntheticAPT(cloud, table, geometry, params, box, matrix=matrix, precipitate=particle)


# ---------------------------------------------------------------------- Fe–Cr cluster cases
#: Cases of :func:`synthesize_fecr_clusters` (cluster analysis at default settings).
FECR_CLUSTER_CASES = ("concentrated", "dilute", "random", "random_dilute")


def synthesize_fecr_clusters(
    case: str = "concentrated",
    size_nm: Sequence[float] = (24.0, 24.0, 40.0),
    seed: int = 0,
    n_particles: int | None = None,
    radius_nm: tuple[float, float] = (1.5, 3.0),
    solutes_per_cluster: tuple[int, int] = (20, 60),
    efficiency: float = 0.37,
    noise_lateral_nm: float = 0.35,
    noise_depth_nm: float = 0.12,
    background: float = 0.02,
    mass_resolving_power: float = 1000.0,
    width_nm: float = 0.3,
) -> SyntheticAPT:
    """Binary Fe–Cr specimens with a known set of Cr clusters (bcc, a = 0.2866 nm).

    ``concentrated``
        Fe–12 at.% Cr matrix with ``n_particles`` (default 30) α′-like
        Fe–84 at.% Cr spheres, radii uniform in ``radius_nm`` (1.5–3 nm),
        10–90 % interface width ``width_nm``, at least 1 nm apart.
    ``dilute``
        Fe–2 at.% Cr matrix with ``n_particles`` (default 40) Cr clusters of
        ``solutes_per_cluster`` detected Cr atoms each, on lattice sites drawn
        with a Gaussian weight (σ = 0.45 nm · (n / 30)^⅓) about the centre.
    ``random`` / ``random_dilute``
        Random Fe–12Cr / Fe–2Cr solid solutions (no clusters).

    The instrument is :func:`synthesize`'s (detection efficiency, anisotropic
    reconstruction blur, isotopes and charge states, 54 Da Fe/Cr isobar,
    peak tails, uniform background). Truth: ``columns["true_cluster"]``
    (particle id per atom inside a sphere / per cluster solute, else 0) and
    ``params["particles"]`` (``radius_nm``: the sphere radius, or √5 σ for
    clusters; ``composition`` at.% of the detected atoms with that id).
    """
    det = _Detector(efficiency, noise_lateral_nm, noise_depth_nm, background, mass_resolving_power)
    (sx, sy, sz), box, rng = _specimen("case", case, FECR_CLUSTER_CASES, size_nm, det, seed)
    elements = ["Fe", "Cr"]
    conc = case in ("concentrated", "random")
    matrix = {"Fe": 0.88, "Cr": 0.12} if conc else {"Fe": 0.98, "Cr": 0.02}
    particle = {"Fe": 0.16, "Cr": 0.84}
    if case.startswith("random"):
        n = 0
    else:
        n = int(n_particles) if n_particles is not None else (30 if case == "concentrated" else 40)
    pos = _lattice_detected(box, (sx, sy, sz), FECR_LATTICE_NM, BCC_BASIS, efficiency, rng)[0]
    cr = 1
    ident = np.zeros(len(pos), np.int32)
    elem = (rng.random(len(pos)) < matrix["Cr"]).astype(np.int8)
    particles: list[dict[str, Any]] = []
    if case == "concentrated" and n:
        radii = rng.uniform(radius_nm[0], radius_nm[1], size=n)
        centres, radii = _place_particles(rng, box, radii, 1.0)
        params_s = {"centres_nm": centres.tolist(), "radii_nm": radii.tolist()}
        d_true, ident = _sphere_distance(params_s, pos, ids=True)
        f = profile_fraction(d_true, width_nm)
        pcr = (1 - f) * matrix["Cr"] + f * particle["Cr"]
        elem = (rng.random(len(pos)) < pcr).astype(np.int8)
        for i, (c, r) in enumerate(zip(centres, radii)):
            particles.append({"id": i + 1, "centre_nm": c.tolist(), "radius_nm": float(r)})
    elif case == "dilute" and n:
        centres, sigma, n_sol = _draw_clusters(rng, box, n, solutes_per_cluster)
        for _, record, pick in _seed_clusters(rng, pos, ident, centres, sigma, n_sol):
            elem[pick] = cr
            particles.append(record)
    _add_compositions(particles, ident, elem, elements)
    charge = {e: FECR_CHARGE_STATES[e] for e in elements}

    def truth(bg_pos: np.ndarray) -> dict[str, np.ndarray]:
        ident_all = np.concatenate([ident, np.zeros(len(bg_pos), np.int32)])
        return {"true_cluster": ident_all, "true_phase": (ident_all > 0).astype(np.uint8)}

    metadata = {"format": "synthetic", "geometry": f"fecr-{case}", "seed": int(seed)}
    species = (elements, charge, matrix)
    cloud, table = _acquire(
        rng, (pos, elem), species, box, det, truth, metadata, as_progress(None)
    )
    params: dict[str, Any] = {
        "case": case,
        "seed": int(seed),
        "size_nm": [sx, sy, sz],
        "elements": elements,
        "matrix": matrix,
        **det.params(mass_resolving_power=False),
        "particles": particles,
    }
    return SyntheticAPT(
        cloud, table, f"fecr-{case}", params, box, matrix=matrix, precipitate=particle
    )
