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
the overlapped masses, except that a range without elements (an
unranged-but-known peak such as ``unknown60`` or a catch-all ``All``)
yields to every range with elements. :meth:`RangeTable.overlaps` lists the
pairs (sorted once, O(n log n)) and constructing a table emits one
:class:`RangeOverlapWarning` that counts them and names the first few.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.aptmodel.ranging import Range, RangeTable, composition
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
    "RangeFileWarning",
    "Composition",
    "species_counts",
    "composition",
    "composition_of_cloud",
]


class RangeFileWarning(UserWarning):
    """A range file had lines that were skipped, merged or reinterpreted (one per file)."""


class RangeOverlapWarning(RangeFileWarning):
    """Two ranges overlap; the one listed first in the file wins."""


#: Species indices are int16 (-1 = unranged).
MAX_SPECIES = 32_000

#: Overlapping pairs named one by one in a warning; the rest are counted.
_PAIRS_SHOWN = 5


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
        Element counts of the ion. Empty for an **unranged-but-known** ion
        (an AP Suite ``unknown60`` peak, a placeholder such as ``X23``,
        ``Hyd`` or ``All``): its ions are counted and listed under ``ion``
        but add no atoms to any element composition.
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
        if not self.composition and not self.ion:
            raise ValueError(f"range {self.lo}-{self.hi} has neither elements nor a name")
        for el, n in self.composition.items():
            if not is_element(el):
                raise ValueError(f"unknown element {el!r} in range {self.lo}-{self.hi}")
            if n <= 0:
                raise ValueError(f"element count {el}:{n} must be positive")

    @property
    def known_unranged(self) -> bool:
        """True for a named peak without elements (counted, not in compositions)."""
        return not self.composition

    def label(self) -> str:
        return f"{self.ion} [{self.lo:g}, {self.hi:g})"


def _species_key(r: Range) -> tuple:
    if r.known_unranged:
        return ("?", r.ion)
    return tuple(sorted(r.composition.items()))


class RangeTable:
    """An ordered list of :class:`Range` with fast ion assignment.

    Parameters
    ----------
    ranges : list of Range
        In file order (which decides overlaps, see module docs).
    source : str, optional
        File the ranges were read from.
    warn : bool
        Emit one :class:`RangeOverlapWarning` summarizing overlapping pairs
        and reused names (the text is kept in ``notes`` either way).

    Attributes
    ----------
    species : list of str
        Unique ion species, in order of first appearance (unranged-but-known
        ions included).
    elements : list of str
        Unique elements, in order of first appearance.
    known_unranged : list of str
        Species without elements (unknown peaks and placeholders).
    notes : list of str
        What construction reinterpreted (overlaps, renamed species).
    """

    def __init__(self, ranges: list[Range], source: str | None = None, warn: bool = True) -> None:
        from .elements import formula

        self.ranges = list(ranges)
        self.source = source
        self.species: list[str] = []
        self.species_composition: dict[str, dict[str, int]] = {}
        self.species_color: dict[str, str | None] = {}
        self.elements: list[str] = []
        self.known_unranged: list[str] = []
        self.notes: list[str] = []
        by_comp: dict[tuple, str] = {}
        index: dict[str, int] = {}
        range_species: list[int] = []
        renamed: list[str] = []
        for i, r in enumerate(self.ranges):
            key = _species_key(r)
            name = by_comp.get(key)
            if name is None:  # a new species (same composition = same species)
                name = r.ion
                if name in self.species_composition:  # a name reused with another composition
                    alt = formula(r.composition) if r.composition else name + "?"
                    k = 2
                    while alt in self.species_composition:
                        alt, k = f"{name}#{k}", k + 1
                    renamed.append(
                        f"#{i + 1} {r.label()}: name {name!r} already means "
                        f"{self.species_composition[name] or 'an unranged-but-known ion'}; "
                        f"counted as {alt!r} with {r.composition or 'no elements'}"
                    )
                    name = alt
                by_comp[key] = name
                index[name] = len(self.species)
                self.species.append(name)
                self.species_composition[name] = dict(r.composition)
                self.species_color[name] = r.color
                if r.known_unranged:
                    self.known_unranged.append(name)
            range_species.append(index[name])
            for el in r.composition:
                if el not in self.elements:
                    self.elements.append(el)
        if renamed:
            self.notes.append(
                f"{len(renamed)} range(s) reuse an ion name with another composition "
                "(AP Suite counts by composition): "
                + "; ".join(renamed[:_PAIRS_SHOWN])
                + (
                    f"; and {len(renamed) - _PAIRS_SHOWN} more"
                    if len(renamed) > _PAIRS_SHOWN
                    else ""
                )
            )
        if len(self.species) > MAX_SPECIES:
            raise ValueError(
                f"{len(self.species):,} distinct ion species (at most {MAX_SPECIES:,}): "
                "not a range table"
            )
        self._range_species = np.array(range_species, dtype=np.int16)
        self._build_lookup()
        n_pairs = self.count_overlaps()
        if n_pairs:
            shown = self.overlaps(limit=_PAIRS_SHOWN)
            text = "; ".join(
                f"#{a + 1} {self.ranges[a].label()} and #{b + 1} {self.ranges[b].label()}"
                for a, b in shown
            )
            more = f"; and {n_pairs - len(shown)} more pairs" if n_pairs > len(shown) else ""
            self.notes.append(
                f"{n_pairs} pair(s) of ranges overlap: {text}{more}; rule: the range listed "
                "first wins for masses in both (a range without elements yields to any "
                "range with elements)"
            )
        if warn and self.notes:
            warnings.warn(
                (f"{self.source}: " if self.source else "") + " | ".join(self.notes),
                RangeOverlapWarning if n_pairs else RangeFileWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ lookup
    def _build_lookup(self) -> None:
        """Disjoint elementary intervals between all range edges -> species index.

        Edges are rounded to float32, the precision of the masses, so a mass
        written as ``lo`` in a float32 file is inside ``[lo, hi)``. Priority:
        ranges with elements in file order, then unranged-but-known ones in
        file order. Each elementary interval is assigned once ("next free"
        pointers with path compression): O(n log n) for n ranges.
        """
        n = len(self.ranges)
        if not n:
            self._edges = np.array([0.0], dtype=np.float32)
            self._interval_species = np.array([-1, -1], dtype=np.int16)
            return
        lo32 = np.array([r.lo for r in self.ranges], dtype=np.float32)
        hi32 = np.array([r.hi for r in self.ranges], dtype=np.float32)
        edges = np.unique(np.concatenate([lo32, hi32]))
        # interval k spans [edges[k-1], edges[k]); k = 0 is below all, k = len is above all
        ka = np.searchsorted(edges, lo32) + 1  # first interval of each range
        kb = np.searchsorted(edges, hi32) + 1  # one past its last interval
        sp = np.full(len(edges) + 1, -1, dtype=np.int16)
        nxt = list(range(len(edges) + 2))  # next unassigned interval >= k

        def find(k: int) -> int:
            root = k
            while nxt[root] != root:
                root = nxt[root]
            while nxt[k] != root:
                nxt[k], k = root, nxt[k]
            return root

        unknown = np.array([r.known_unranged for r in self.ranges])
        order = np.concatenate([np.flatnonzero(~unknown), np.flatnonzero(unknown)])
        rs = self._range_species
        for i in order.tolist():
            a, b = int(ka[i]), int(kb[i])
            k = find(a)
            while k < b:
                sp[k] = rs[i]
                nxt[k] = k + 1
                k = find(k + 1)
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

    def _sorted(self):
        lo = np.array([r.lo for r in self.ranges], dtype=np.float64)
        hi = np.array([r.hi for r in self.ranges], dtype=np.float64)
        order = np.argsort(lo, kind="stable")
        los = lo[order]
        # ranges after position p in ``order`` that start before its end overlap it
        stop = np.searchsorted(los, hi[order], side="left")
        return order, stop

    def count_overlaps(self) -> int:
        """Number of overlapping pairs, in O(n log n) (without listing them)."""
        if len(self.ranges) < 2:
            return 0
        order, stop = self._sorted()
        pos = np.arange(len(order))
        # ties in lo: searchsorted 'left' on hi counts ranges with lo < hi_p, all after p
        # once equal-lo ranges before p are excluded
        return int(np.maximum(stop - pos - 1, 0).sum())

    def overlaps(self, limit: int | None = None) -> list[tuple[int, int]]:
        """Pairs ``(i, j)``, ``i < j``, of range indices whose windows overlap.

        ``limit`` stops after that many pairs (the listing itself is
        O(n log n + pairs)); :meth:`count_overlaps` counts them all.
        """
        if len(self.ranges) < 2:
            return []
        order, stop = self._sorted()
        out: list[tuple[int, int]] = []
        for p in range(len(order)):
            for q in range(p + 1, int(stop[p])):
                i, j = int(order[p]), int(order[q])
                out.append((min(i, j), max(i, j)))
                if limit is not None and len(out) >= limit:
                    return sorted(out)
        return sorted(out)

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
        Ion counts: ``ranged`` in ranges with elements, ``unranged`` in no
        range; ions of unranged-but-known species are in neither.
    known_unranged : dict of str to int
        Ions per unranged-but-known species (unknown peaks, placeholders):
        counted and listed, kept out of ``element_counts``.
    """

    species_counts: dict[str, int]
    element_counts: dict[str, float]
    atomic_percent: dict[str, float]
    n_ions: int
    ranged: int
    unranged: int
    known_unranged: dict[str, int] = field(default_factory=dict)

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
    known = getattr(ranges, "known_unranged", [])
    known_counts = {s: int(counts[ranges.species.index(s)]) for s in known}
    return Composition(
        species_counts={s: int(counts[i]) for i, s in enumerate(ranges.species)},
        element_counts={e: float(el[i]) for i, e in enumerate(ranges.elements)},
        atomic_percent={
            e: (100.0 * float(el[i]) / float(total) if total else 0.0)
            for i, e in enumerate(ranges.elements)
        },
        n_ions=int(counts.sum()),
        ranged=int(counts[:n_sp].sum()) - sum(known_counts.values()),
        unranged=int(counts[n_sp]),
        known_unranged=known_counts,
    )


def composition_of_cloud(cloud, ranges: RangeTable, progress=None) -> Composition:
    """Range every ion of a :class:`~napari_interfaces.aptmodel.pointcloud.PointCloud` (chunked)."""
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
