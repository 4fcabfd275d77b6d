"""Ranging: mass-to-charge ratio -> ion species -> elements.

A :class:`RangeTable` is a list of :class:`Range` (``lo <= m < hi`` in Da,
each naming an ion species such as ``"CrO2"`` with its element counts
``{"Cr": 1, "O": 2}``). :meth:`RangeTable.species_of` gives each ion the
index of its species (``-1`` for unranged ions) and
:func:`composition` turns species counts into atomic composition by
decomposing molecular ions (one CrO2 ion counts 1 Cr + 2 O atoms).

Overlapping ranges
------------------
Where ranges overlap, the range that comes **first in the file** wins for
the overlapped masses. :meth:`RangeTable.overlaps` lists the pairs and
constructing a table emits one :class:`RangeOverlapWarning` per pair that
names both ranges and this rule.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.apt.ranging import Range, RangeTable, composition
>>> rt = RangeTable([Range(26.0, 27.5, "Cr", {"Cr": 1}), Range(41.8, 43.2, "CrO2", {"Cr": 1, "O": 2})])
>>> rt.species_of(np.array([26.0, 27.5, 42.0, 99.0]))
array([ 0, -1,  1, -1], dtype=int16)
>>> comp = composition(np.array([1, 1, 2]), rt)  # Cr, CrO2, unranged
>>> comp.atomic_percent["O"], comp.unranged
(50.0, 2)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .elements import is_element

__all__ = [
    "Range",
    "RangeTable",
    "RangeOverlapWarning",
    "Composition",
    "species_counts",
    "composition",
    "composition_of_cloud",
]


class RangeOverlapWarning(UserWarning):
    """Two ranges overlap; the one listed first in the file wins."""


@dataclass(frozen=True)
class Range:
    """One mass window ``lo <= m < hi`` (Da) assigned to an ion species.

    Parameters
    ----------
    lo, hi : float
        Window in Da, ``lo < hi``.
    ion : str
        Species name (e.g. ``"CrO2"``); defaults to the formula of ``composition``.
    composition : dict of str to int
        Element counts of the ion.
    color : str, optional
        ``"#rrggbb"``.
    volume : float, optional
        Atomic volume (nm³) from ``Vol:``, informative only.
    """

    lo: float
    hi: float
    ion: str
    composition: dict[str, int] = field(hash=False, compare=True)
    color: str | None = None
    volume: float | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lo) and np.isfinite(self.hi)) or not self.lo < self.hi:
            raise ValueError(f"range {self.lo}-{self.hi} must have finite lo < hi")
        if not self.composition:
            raise ValueError(f"range {self.lo}-{self.hi} ({self.ion}) has no elements")
        for el, n in self.composition.items():
            if not is_element(el):
                raise ValueError(f"unknown element {el!r} in range {self.lo}-{self.hi}")
            if n <= 0:
                raise ValueError(f"element count {el}:{n} must be positive")

    def label(self) -> str:
        return f"{self.ion} [{self.lo:g}, {self.hi:g})"


class RangeTable:
    """An ordered list of :class:`Range` with fast ion assignment.

    Parameters
    ----------
    ranges : list of Range
        In file order (which decides overlaps, see module docs).
    source : str, optional
        File the ranges were read from.
    warn : bool
        Emit :class:`RangeOverlapWarning` for overlapping pairs.

    Attributes
    ----------
    species : list of str
        Unique ion species, in order of first appearance.
    elements : list of str
        Unique elements, in order of first appearance.
    """

    def __init__(self, ranges: list[Range], source: str | None = None, warn: bool = True) -> None:
        self.ranges = list(ranges)
        self.source = source
        self.species: list[str] = []
        self.species_composition: dict[str, dict[str, int]] = {}
        self.species_color: dict[str, str | None] = {}
        self.elements: list[str] = []
        by_comp: dict[tuple, str] = {}
        range_species: list[str] = []
        for r in self.ranges:
            key = tuple(sorted(r.composition.items()))
            if r.ion in self.species_composition and self.species_composition[r.ion] != dict(
                r.composition
            ):
                raise ValueError(
                    f"ion {r.ion!r} has two different compositions: "
                    f"{self.species_composition[r.ion]} and {r.composition}"
                )
            name = by_comp.get(key)
            if name is None:  # a new species (same composition = same species)
                name = r.ion
                by_comp[key] = name
                self.species.append(name)
                self.species_composition[name] = dict(r.composition)
                self.species_color[name] = r.color
            range_species.append(name)
            for el in r.composition:
                if el not in self.elements:
                    self.elements.append(el)
        self._range_species = np.array(
            [self.species.index(n) for n in range_species], dtype=np.int16
        )
        self._build_lookup()
        if warn:
            for a, b in self.overlaps():
                warnings.warn(
                    f"ranges overlap: #{a + 1} {self.ranges[a].label()} and #{b + 1} "
                    f"{self.ranges[b].label()}"
                    f"{' in ' + self.source if self.source else ''}; rule: the range listed "
                    f"first (#{a + 1}) wins for masses in both",
                    RangeOverlapWarning,
                    stacklevel=2,
                )

    # ------------------------------------------------------------------ lookup
    def _build_lookup(self) -> None:
        """Disjoint elementary intervals between all range edges -> species index.

        Edges are rounded to float32, the precision of the masses, so a mass
        written as ``lo`` in a float32 file is inside ``[lo, hi)``.
        """
        if not self.ranges:
            self._edges = np.array([0.0], dtype=np.float32)
            self._interval_species = np.array([-1, -1], dtype=np.int16)
            return
        lo32 = [np.float32(r.lo) for r in self.ranges]
        hi32 = [np.float32(r.hi) for r in self.ranges]
        edges = np.unique(np.array(lo32 + hi32, dtype=np.float32))
        # interval k spans [edges[k-1], edges[k]); k = 0 is below all, k = len is above all
        sp = np.full(len(edges) + 1, -1, dtype=np.int16)
        for k in range(1, len(edges)):
            a, b = edges[k - 1], edges[k]
            for i in range(len(self.ranges)):  # first in file order wins
                if lo32[i] <= a and b <= hi32[i]:
                    sp[k] = self._range_species[i]
                    break
        self._edges = edges
        self._interval_species = sp

    def species_of(self, mass: np.ndarray) -> np.ndarray:
        """Species index per ion (``-1`` = unranged), int16.

        A mass ``m`` is in a range when ``lo <= m < hi``, compared in float32.
        """
        m = np.asarray(mass)
        if m.dtype != np.float32 or not m.dtype.isnative:
            m = m.astype(np.float32)
        k = np.searchsorted(self._edges, m, side="right")
        return self._interval_species[k]

    def overlaps(self) -> list[tuple[int, int]]:
        """Pairs ``(i, j)``, ``i < j``, of range indices whose windows overlap."""
        out = []
        for i, a in enumerate(self.ranges):
            for j in range(i + 1, len(self.ranges)):
                b = self.ranges[j]
                if a.lo < b.hi and b.lo < a.hi:
                    out.append((i, j))
        return out

    # ------------------------------------------------------------------ decomposition
    def decomposition(self) -> np.ndarray:
        """Matrix ``(n_species, n_elements)`` of atoms of each element per ion."""
        mat = np.zeros((len(self.species), len(self.elements)), dtype=np.float64)
        for i, sp in enumerate(self.species):
            for el, n in self.species_composition[sp].items():
                mat[i, self.elements.index(el)] = n
        return mat

    def __len__(self) -> int:
        return len(self.ranges)

    def __iter__(self):
        return iter(self.ranges)

    def __repr__(self) -> str:
        return (
            f"RangeTable({len(self.ranges)} ranges, species={self.species}, "
            f"elements={self.elements})"
        )

    def color_of(self, species: str) -> str:
        """Colour ``#rrggbb`` of a species (a fixed palette when the file had none)."""
        c = self.species_color.get(species)
        if c:
            return c
        palette = [
            "#1f77b4",
            "#ff7f0e",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#8c564b",
            "#e377c2",
            "#7f7f7f",
            "#bcbd22",
            "#17becf",
        ]
        return palette[self.species.index(species) % len(palette)]


@dataclass
class Composition:
    """Counts and atomic composition of a set of ions.

    Attributes
    ----------
    species_counts : dict of str to int
        Ions per species.
    element_counts : dict of str to float
        Atoms per element after decomposing molecular ions.
    atomic_percent : dict of str to float
        at.% per element (ranged atoms only).
    n_ions, ranged, unranged : int
        Ion counts.
    """

    species_counts: dict[str, int]
    element_counts: dict[str, float]
    atomic_percent: dict[str, float]
    n_ions: int
    ranged: int
    unranged: int

    @property
    def ranged_fraction(self) -> float:
        return self.ranged / self.n_ions if self.n_ions else 0.0


def species_counts(species_index: np.ndarray, n_species: int) -> np.ndarray:
    """Counts per species; the last entry counts unranged ions (index ``-1``)."""
    c = np.bincount(
        np.asarray(species_index, dtype=np.int64) % (n_species + 1), minlength=n_species + 1
    )
    return c


def composition(counts: np.ndarray, ranges: RangeTable) -> Composition:
    """Composition from species counts (length ``n_species + 1``, last = unranged)."""
    counts = np.asarray(counts)
    n_sp = len(ranges.species)
    sp = counts[:n_sp].astype(np.float64)
    el = sp @ ranges.decomposition() if n_sp else np.zeros(0)
    total = el.sum()
    return Composition(
        species_counts={s: int(counts[i]) for i, s in enumerate(ranges.species)},
        element_counts={e: float(el[i]) for i, e in enumerate(ranges.elements)},
        atomic_percent={
            e: (100.0 * float(el[i]) / float(total) if total else 0.0)
            for i, e in enumerate(ranges.elements)
        },
        n_ions=int(counts.sum()),
        ranged=int(counts[:n_sp].sum()),
        unranged=int(counts[n_sp]),
    )


def composition_of_cloud(cloud, ranges: RangeTable, progress=None) -> Composition:
    """Range every ion of a :class:`~napari_interfaces.apt.pointcloud.PointCloud` (chunked)."""
    from ..core.progress import as_progress
    from ._numba import kernels

    progress = as_progress(progress)
    progress.start(len(list(cloud.chunks())), "ranging")
    n_sp = len(ranges.species)
    k = kernels()

    def one(a: int, b: int) -> np.ndarray:
        if k is not None:
            out = np.zeros(n_sp + 1, dtype=np.int64)
            k["count"](
                cloud.native_records(a, b), ranges._edges, ranges._interval_species, n_sp, out
            )
            return out
        return species_counts(ranges.species_of(cloud.native_chunk(a, b)[1]), n_sp)

    total = np.sum(cloud.map_chunks(one, progress=progress), axis=0)
    return composition(total, ranges)
