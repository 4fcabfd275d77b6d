"""Statistics of a cluster analysis: per cluster, per dataset, and the
randomized-label check that tells real clustering from noise.

Per cluster (:func:`cluster_table`): ions, atoms (molecular ions
decomposed), solute atoms, composition (at.%) with its counting error
``100 sqrt(c (1 - c) / N)``, centre (centroid of the solute ions, nm),
radius of gyration ``Rg = sqrt(<|x - centre|²>)`` of the solute ions, the
Guinier radius ``sqrt(5/3) Rg`` (the radius of a uniform sphere with that
Rg), the Guinier-sphere volume, and, with the detection efficiency η and
the atomic volume Ω, the volume from the atom count ``N Ω / η``.

Per dataset (:func:`dataset_summary`): number density (m⁻³, Poisson error),
matrix composition (ions outside clusters) with errors, the size
distribution (solute atoms per cluster; Guinier radii), the fraction of the
solute atoms in clusters.

Randomized-label check (:func:`nn_check`): the distribution of the k-th
nearest-neighbour distance between solute ions against the same for as
many ions drawn at random from the same positions (the solute labels
shuffled). Random solutes give the same distribution; clustering moves
weight to short distances. :func:`suggest_parameters` proposes ``dmax`` (where
the measured distribution falls below the random one) and ``n_min`` (one
more than the largest "cluster" the maximum separation method finds in the
randomized data with that ``dmax``, so random fluctuations give none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "NNCheck",
    "analysed_volume_nm3",
    "cluster_table",
    "dataset_summary",
    "knn_distances",
    "nn_check",
    "plot_nn_check",
    "suggest_parameters",
    "choose_parameters",
    "envelope_from_spacing",
    "randomized_verdict",
]

GUINIER = float(np.sqrt(5.0 / 3.0))


def _atom_counts(labels: np.ndarray, species: np.ndarray, ranges, n_lab: int) -> np.ndarray:
    """(n_lab, E) decomposed atom counts per label 0..n_lab-1 (ions with label >= 0)."""
    dec = np.asarray(ranges.decomposition(), np.float64)
    S = dec.shape[0]
    ok = (labels >= 0) & (species >= 0)
    key = labels[ok].astype(np.int64) * S + species[ok].astype(np.int64)
    sc = np.bincount(key, minlength=n_lab * S).reshape(n_lab, S)
    return sc @ dec


def _composition(counts: np.ndarray, elements: list[str]) -> tuple[dict, dict]:
    n = float(counts.sum())
    c = counts / n if n > 0 else np.zeros_like(counts, dtype=float)
    err = np.sqrt(c * (1 - c) / n) if n > 0 else np.zeros_like(c)
    return (
        {e: round(100.0 * float(c[i]), 4) for i, e in enumerate(elements)},
        {e: round(100.0 * float(err[i]), 4) for i, e in enumerate(elements)},
    )


def cluster_table(
    xyz: np.ndarray,
    species: np.ndarray,
    labels: np.ndarray,
    ranges,
    solute: np.ndarray,
    efficiency: float | None = None,
    atomic_volume_nm3: float | None = None,
) -> list[dict[str, Any]]:
    """One row per cluster label ``1..N`` (see module docstring)."""
    n = int(labels.max(initial=0))
    if n == 0:
        return []
    elements = list(ranges.elements)
    atoms = _atom_counts(labels, species, ranges, n + 1)
    n_ions = np.bincount(np.maximum(labels, 0), minlength=n + 1)
    sel = solute & (labels > 0)
    lab = labels[sel].astype(np.int64)
    p = np.asarray(xyz[sel], np.float64)
    ns = np.bincount(lab, minlength=n + 1).astype(np.float64)
    cen = np.stack([np.bincount(lab, p[:, i], minlength=n + 1) for i in range(3)], 1)
    cen = cen / np.maximum(ns, 1)[:, None]
    r2 = np.bincount(lab, ((p - cen[lab]) ** 2).sum(axis=1), minlength=n + 1)
    rg = np.sqrt(r2 / np.maximum(ns, 1))
    solute_els = [
        i
        for i, e in enumerate(elements)
        if np.any(np.asarray(ranges.decomposition())[:, i] > 0)
        and _element_is_solute(i, ranges, solute, species)
    ]
    rows = []
    for k in range(1, n + 1):
        comp, err = _composition(atoms[k], elements)
        rgui = GUINIER * float(rg[k])
        row: dict[str, Any] = {
            "cluster": k,
            "n_ions": int(n_ions[k]),
            "n_atoms": int(round(atoms[k].sum())),
            "n_solute_ions": int(ns[k]),
            "n_solute_atoms": int(round(atoms[k][solute_els].sum())) if solute_els else 0,
            "x_nm": round(float(cen[k, 0]), 4),
            "y_nm": round(float(cen[k, 1]), 4),
            "z_nm": round(float(cen[k, 2]), 4),
            "rg_nm": round(float(rg[k]), 4),
            "guinier_radius_nm": round(rgui, 4),
            "volume_nm3": round(4.0 / 3.0 * np.pi * rgui**3, 4),
        }
        if efficiency and atomic_volume_nm3:
            row["volume_from_atoms_nm3"] = round(
                float(atoms[k].sum()) * atomic_volume_nm3 / efficiency, 4
            )
        for e in elements:
            row[f"{e}_at%"] = comp[e]
            row[f"{e}_err_at%"] = err[e]
        rows.append(row)
    return rows


def _element_is_solute(i: int, ranges, solute: np.ndarray, species: np.ndarray) -> bool:
    """Whether element ``i`` occurs in a species of the solute ions."""
    dec = np.asarray(ranges.decomposition())
    sp = np.unique(species[solute & (species >= 0)])
    return bool(len(sp)) and bool(np.any(dec[sp, i] > 0))


def analysed_volume_nm3(
    xyz: np.ndarray, n_atoms: float | None = None, efficiency=None, atomic_volume_nm3=None
) -> tuple[float, str]:
    """Analysed volume (nm³) and how it was obtained: ``N Ω / η`` when the
    efficiency and atomic volume are given, else the number of occupied 1 nm³
    voxels (at least a quarter of the median ion count of the non-empty ones)."""
    if efficiency and atomic_volume_nm3 and n_atoms:
        return float(
            n_atoms
        ) * atomic_volume_nm3 / efficiency, "atoms x atomic volume / efficiency"
    p = np.asarray(xyz, np.float64)
    if len(p) == 0:
        return 0.0, "empty"
    lo = p.min(axis=0)
    idx = np.floor(p - lo).astype(np.int64)
    shape = idx.max(axis=0) + 1
    flat = np.ravel_multi_index(tuple(idx.T), tuple(shape))
    cnt = np.bincount(flat)
    cnt = cnt[cnt > 0]
    thr = 0.25 * float(np.median(cnt))
    return float((cnt >= thr).sum()), "occupied 1 nm voxels"


def dataset_summary(
    xyz: np.ndarray,
    species: np.ndarray,
    labels: np.ndarray,
    ranges,
    table: list[dict[str, Any]],
    efficiency: float | None = None,
    atomic_volume_nm3: float | None = None,
) -> dict[str, Any]:
    """Number density, matrix composition, size distribution (module docstring)."""
    elements = list(ranges.elements)
    n = len(table)
    analysed = labels >= 0
    both = _atom_counts(np.where(labels > 0, 1, labels), species, ranges, 2)
    matrix_comp, matrix_err = _composition(both[0], elements)
    vol, how = analysed_volume_nm3(
        xyz[analysed], both.sum(), efficiency=efficiency, atomic_volume_nm3=atomic_volume_nm3
    )
    dens = n / (vol * 1e-27) if vol > 0 else float("nan")
    sizes = np.array([r["n_solute_atoms"] for r in table], float)
    radii = np.array([r["guinier_radius_nm"] for r in table], float)
    total_solute = float(sum(r["n_solute_atoms"] for r in table))
    if n:
        edges = np.unique(np.r_[0, np.geomspace(2, max(sizes.max(), 2) + 1, 12).astype(int)])
        hist, _ = np.histogram(sizes, bins=edges)
    else:
        edges, hist = np.array([0, 1]), np.array([0])
    return {
        "n_clusters": n,
        "n_ions_analysed": int(analysed.sum()),
        "analysed_volume_nm3": round(vol, 2),
        "analysed_volume_method": how,
        "number_density_m3": dens,
        "number_density_err_m3": float(np.sqrt(n) / (vol * 1e-27)) if vol > 0 else float("nan"),
        "matrix_composition_at%": matrix_comp,
        "matrix_composition_err_at%": matrix_err,
        "cluster_composition_at%": _composition(both[1], elements)[0],
        "solute_atoms_in_clusters": int(round(total_solute)),
        "size_distribution": {
            "solute_atoms_bin_edges": [int(e) for e in edges],
            "counts": [int(h) for h in hist],
            "mean_solute_atoms": float(sizes.mean()) if n else float("nan"),
            "guinier_radius_nm_mean": float(radii.mean()) if n else float("nan"),
            "guinier_radius_nm_std": float(radii.std()) if n else float("nan"),
        },
    }


# ---------------------------------------------------------------------- NN check
def knn_distances(points: np.ndarray, k: int = 1) -> np.ndarray:
    """Distance (nm) of each point to its ``k``-th nearest other point."""
    from scipy.spatial import cKDTree

    p = np.asarray(points, np.float64)
    if len(p) <= k:
        return np.zeros(0)
    d, _ = cKDTree(p).query(p, k=k + 1, workers=-1)
    return d[:, k]


@dataclass
class NNCheck:
    """k-th NN distances of the solute ions (``measured``) and of as many ions
    drawn at random from the same positions (``random``); histograms on ``bins``."""

    order: int
    measured: np.ndarray
    random: np.ndarray
    bins: np.ndarray
    n_solute: int
    n_positions: int

    def histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """Probability densities (1/nm) of the measured and random distances."""
        hm, _ = np.histogram(self.measured, self.bins, density=True)
        hr, _ = np.histogram(self.random, self.bins, density=True)
        return hm, hr

    def summary(self, dmax: float) -> dict[str, Any]:
        """Means, the fractions within ``dmax``, a z-score of their difference and
        the two-sample Kolmogorov–Smirnov test; ``clustered`` when the measured
        distances are shorter (median) and the KS p-value is below 1e-3."""
        from scipy.stats import ks_2samp

        fm = float(np.mean(self.measured <= dmax)) if len(self.measured) else float("nan")
        fr = float(np.mean(self.random <= dmax)) if len(self.random) else float("nan")
        n = len(self.measured)
        se = np.sqrt(max(fr * (1 - fr), 1.0 / max(n, 1)) * 2.0 / max(n, 1))
        z = (fm - fr) / se if n else float("nan")
        ks = ks_2samp(self.measured, self.random) if n > 1 else None
        shorter = n > 1 and float(np.median(self.measured)) < float(np.median(self.random))
        clustered = bool(shorter and ks.pvalue < 1e-3)
        return {
            "order": self.order,
            "n_solute": self.n_solute,
            "mean_nn_nm": float(np.mean(self.measured)) if n else float("nan"),
            "mean_nn_random_nm": float(np.mean(self.random)) if len(self.random) else float("nan"),
            "fraction_within_dmax": fm,
            "fraction_within_dmax_random": fr,
            "excess_z": float(z),
            "ks_statistic": float(ks.statistic) if ks else float("nan"),
            "ks_pvalue": float(ks.pvalue) if ks else float("nan"),
            "clustered": clustered,
            "verdict": (
                "solutes are clustered (k-th NN distances shorter than with shuffled labels)"
                if clustered
                else "no clustering beyond random (NN distances as with shuffled labels)"
            ),
        }


def nn_check(
    solute_xyz: np.ndarray,
    positions: np.ndarray,
    order: int = 1,
    seed: int = 0,
    bin_nm: float = 0.02,
    max_nm: float | None = None,
) -> NNCheck:
    """Randomized-label check: k-th NN distances of the solutes vs shuffled labels.

    ``positions`` are all analysed ions (the solutes among them); the random
    sample is ``len(solute_xyz)`` of them drawn without replacement, i.e.
    the same positions with the solute labels shuffled.
    """
    rng = np.random.default_rng(seed)
    n = len(solute_xyz)
    pos = np.asarray(positions)
    pick = rng.choice(len(pos), size=min(n, len(pos)), replace=False)
    meas = knn_distances(solute_xyz, order)
    rand = knn_distances(pos[pick], order)
    if max_nm:
        top = float(max_nm)
    else:
        top = float(np.percentile(np.r_[meas, rand], 99.5)) if len(meas) else 1.0
    bins = np.arange(0.0, max(top, 4 * bin_nm) + bin_nm, bin_nm)
    return NNCheck(order, meas, rand, bins, n, len(pos))


def suggest_parameters(
    nn: NNCheck,
    positions: np.ndarray,
    order: int = 1,
    dmax: float | None = None,
    n_min: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``dmax``: first distance beyond the measured mode where the random
    density reaches the measured one (smoothed histograms); ``n_min``: one more
    than the largest cluster the maximum separation method finds with that
    ``dmax`` in the shuffled data. With ``dmax``/``n_min`` given, also the
    number of clusters the shuffled data gives at those values (false clusters
    to expect)."""
    from scipy import ndimage

    from .linking import _filter_and_number, link_solutes

    hm, hr = nn.histograms()
    centres = 0.5 * (nn.bins[1:] + nn.bins[:-1])
    hm_s = ndimage.gaussian_filter1d(hm.astype(float), 2)
    hr_s = ndimage.gaussian_filter1d(hr.astype(float), 2)
    mode = int(np.argmax(hm_s))
    after = np.flatnonzero((hr_s >= hm_s) & (np.arange(len(hm_s)) > mode))
    if len(after) and np.any(hm_s[: after[0]] > hr_s[: after[0]]):
        d_sug = float(centres[after[0]])
        note = "crossing of the measured and random NN distributions"
    else:
        d_sug = float(np.percentile(nn.random, 5)) if len(nn.random) else float("nan")
        note = "no crossing (no clustering): 5th percentile of the random NN distances"
    rng = np.random.default_rng(seed + 1)
    pos = np.asarray(positions)
    pick = rng.choice(len(pos), size=min(nn.n_solute, len(pos)), replace=False)
    rand = np.asarray(pos[pick], np.float64)

    def random_sizes(d: float) -> np.ndarray:
        comp = link_solutes(rand, d, order)
        ok = comp[comp >= 0]
        return np.bincount(ok) if len(ok) else np.zeros(0, np.int64)

    sizes = random_sizes(d_sug)
    out: dict[str, Any] = {
        "dmax_nm": round(d_sug, 3),
        "dmax_rule": note,
        "n_min": int(sizes.max() + 1) if len(sizes) else 2,
        "n_min_rule": "largest cluster in the shuffled data + 1",
    }
    if dmax is not None and n_min is not None:
        lab = _filter_and_number(link_solutes(rand, dmax, order), n_min)
        out["random_clusters_at_chosen"] = int(lab.max(initial=0))
    return out


def plot_nn_check(nn: NNCheck, ax=None, dmax: float | None = None, suggested: float | None = None):
    """Measured vs random k-th NN distance distributions on a matplotlib axes."""
    if ax is None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.2, 3.5), dpi=110)
    hm, hr = nn.histograms()
    x = nn.bins
    ax.stairs(hm, x, label=f"solutes (n = {nn.n_solute})", lw=1.4)
    ax.stairs(hr, x, label="shuffled labels", lw=1.4, ls="--")
    if dmax is not None:
        ax.axvline(dmax, color="k", lw=0.8, label=f"dmax = {dmax:g} nm")
    if suggested is not None and np.isfinite(suggested):
        ax.axvline(suggested, color="0.5", lw=0.8, ls=":", label=f"suggested {suggested:g} nm")
    ax.set_xlabel(f"distance to {nn.order}-th nearest solute neighbour (nm)")
    ax.set_ylabel("probability density (1/nm)")
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------- automatic parameters
#: Orders ``k`` tried by :func:`choose_parameters`.
AUTO_ORDERS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20)
#: Fraction of randomly labelled solutes allowed to be cores: ``dmax`` is this
#: quantile of the k-th NN distance with shuffled labels.
RANDOM_CORE_FRACTION = 0.01
#: Randomized-label draws that set ``n_min`` (1.2 x the largest random cluster + 1).
N_RANDOM_DRAWS = 2
#: ``n_min`` is this factor times the largest cluster of the shuffled draws, + 1
#: (the largest of a few draws underestimates the tail of random cluster sizes).
NMIN_MARGIN = 1.2
#: An order is a candidate only when its clusters hold at least this share of the
#: largest clustered solute fraction of any order.
MIN_SHARE = 0.25


def _link_pre(s: np.ndarray, dk: np.ndarray, dmax: float) -> np.ndarray:
    """:func:`~napari_interfaces.apt.clusters.link_solutes` with the k-th NN
    distances ``dk`` already known (``order > 1`` semantics when ``dk`` is given
    for k > 1; for k = 1 every solute is a core)."""
    from scipy.spatial import cKDTree

    from .linking import link_cores

    core = np.flatnonzero(dk <= dmax)
    if len(core) < 2:
        return np.full(len(s), -1, np.int64)
    return link_cores(s, core, dmax, cKDTree(s[core]), attach=True)


def _sizes(comp: np.ndarray) -> np.ndarray:
    ok = comp[comp >= 0]
    return np.bincount(ok) if len(ok) else np.zeros(0, np.int64)


def _mutual(a: np.ndarray, b: np.ndarray, n_min_b: int | None = None) -> int:
    """Clusters (labels > 0) of ``a`` and ``b`` that are each other's best overlap,
    plus (with ``n_min_b``) clusters of ``a`` smaller than ``n_min_b`` that have no
    counterpart in ``b`` at all (gone only because ``b`` needs more solutes)."""
    both = (a > 0) & (b > 0)
    gone = 0
    if n_min_b is not None and (a > 0).any():
        sizes = np.bincount(a[a > 0])
        ids = np.flatnonzero(sizes)
        seen = np.zeros(len(sizes), bool)
        seen[np.unique(a[both])] = True
        gone = int(np.sum(~seen[ids] & (sizes[ids] < n_min_b)))
    if not both.any():
        return gone
    pairs, cnt = np.unique(np.stack([a[both], b[both]]), axis=1, return_counts=True)
    best_b: dict[int, tuple[int, int]] = {}
    best_a: dict[int, tuple[int, int]] = {}
    for (x, y), c in zip(pairs.T.tolist(), cnt.tolist()):
        if c > best_b.get(x, (0, 0))[1]:
            best_b[x] = (y, c)
        if c > best_a.get(y, (0, 0))[1]:
            best_a[y] = (x, c)
    return gone + sum(1 for x, (y, _) in best_b.items() if best_a[y][0] == x)


def choose_parameters(
    solute_xyz: np.ndarray,
    positions: np.ndarray,
    order: int | None = None,
    dmax: float | None = None,
    n_min: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Order ``k``, ``dmax`` and ``n_min`` of the maximum separation method from the data.

    Following Stephenson et al. (2007) and Jägle, Choi & Raabe (2014), each
    parameter is set against the same positions with the solute labels
    shuffled (``N_RANDOM_DRAWS + 1`` independent shuffles):

    - ``dmax(k)``: the :data:`RANDOM_CORE_FRACTION` quantile (1 %) of the
      k-th nearest-neighbour distance with shuffled labels, so randomly
      placed solutes are cores with 1 % probability at any matrix
      concentration;
    - ``n_min(k)``: one more than the largest cluster the method finds in the
      shuffled data with ``(k, dmax(k))``, so random fluctuations give none;
    - ``k``: the most *stable* order of :data:`AUTO_ORDERS` (the lowest on a
      tie): clusters that persist one-to-one (each other's largest overlap)
      at both neighbouring orders count for it, clusters that split or merge
      against it (score ``3 persistent - clusters``); a cluster that is
      absent at a neighbouring order only because it is smaller than that
      order's ``n_min`` counts as persistent. Only orders whose
      clusters hold at least :data:`MIN_SHARE` of the largest clustered
      solute fraction are candidates, and not the highest order (it has one
      neighbour). In a concentrated matrix low orders need a tiny ``dmax``
      and fragment precipitates into many pieces that change from order to
      order, so ``k`` rises by itself; in a dilute one a low order is
      already stable and keeps small clusters. Without a positive score the
      lowest order is used (a random solid solution then gives none).

    Values given (``order``, ``dmax``, ``n_min``) are kept and only the others
    chosen. Returns the chosen values, the reasons (``why``) and the table
    of candidates (``candidates``).
    """
    from scipy.spatial import cKDTree

    s = np.asarray(solute_xyz, np.float64)
    pos = np.asarray(positions)
    n = len(s)
    orders = [order] if order is not None else [k for k in AUTO_ORDERS if k <= max(n - 2, 1)]
    kmax = max(orders)
    rng = np.random.default_rng(seed + 7)

    def knn(p: np.ndarray) -> np.ndarray:
        kk = min(kmax + 1, len(p))
        d, _ = cKDTree(p).query(p, k=kk, workers=-1)
        return d.reshape(len(p), kk)

    dm = knn(s)
    draws = []
    for _ in range(N_RANDOM_DRAWS + 1):
        r = np.asarray(pos[rng.choice(len(pos), size=min(n, len(pos)), replace=False)], np.float64)
        draws.append((r, knn(r)))
    from .linking import _filter_and_number

    rows = []
    labs: list[np.ndarray] = []
    for k in orders:
        if k >= dm.shape[1]:
            continue
        d = (
            float(dmax)
            if dmax is not None
            else float(np.quantile(draws[0][1][:, k], RANDOM_CORE_FRACTION))
        )
        col = (lambda a, k=k: a[:, k]) if k > 1 else (lambda a: np.zeros(len(a)))
        rand_sizes = [_sizes(_link_pre(r, col(dr), d)) for r, dr in draws[1:]]
        largest = max((int(z.max()) if len(z) else 0) for z in rand_sizes)
        nm = int(n_min) if n_min is not None else max(int(np.ceil(NMIN_MARGIN * largest)) + 1, 2)
        comp = _link_pre(s, col(dm), d)
        meas = _sizes(comp)
        labs.append(_filter_and_number(comp, nm))
        frac = float(meas[meas >= nm].sum()) / max(n, 1)
        n_rand = float(np.mean([int((z >= nm).sum()) for z in rand_sizes]))
        rows.append(
            {
                "order": k,
                "dmax_nm": round(d, 4),
                "n_min": nm,
                "largest_random_cluster": largest,
                "clusters": int((meas >= nm).sum()),
                "clusters_random": n_rand,
                "solute_fraction_clustered": round(frac, 4),
                "core_fraction": round(float(np.mean(col(dm) <= d)), 4),
            }
        )
    if not rows:
        k = order or 1
        return {
            "order": k,
            "dmax": float(dmax or 0.5),
            "n_min": int(n_min or 10),
            "why": {"order": "too few solute ions to choose parameters"},
            "candidates": [],
        }
    best = max(r["solute_fraction_clustered"] for r in rows)
    for i, r in enumerate(rows):  # clusters that persist one-to-one into the neighbour orders
        nb = [j for j in (i - 1, i + 1) if 0 <= j < len(rows)]
        r["persistent"] = min((_mutual(labs[i], labs[j], rows[j]["n_min"]) for j in nb), default=0)
        r["stability"] = 3 * r["persistent"] - r["clusters"]
    # candidates: not the highest order (it has one neighbour only), holding a real
    # share of the solutes (tiny clusters of a few ions are not the structure)
    cand = [
        r
        for r in rows[: max(len(rows) - 1, 1)]
        if r["clusters"] > 0 and r["solute_fraction_clustered"] >= MIN_SHARE * best
    ]
    top = max((r["stability"] for r in cand), default=0)
    if order is not None:
        pick = rows[0]
        rule = "given"
    elif best <= 0 or top <= 0:
        pick = rows[0]
        rule = "no order finds clusters that persist across orders: the lowest"
    else:
        pick = next(r for r in cand if r["stability"] == top)
        rule = (
            "most stable order: the most clusters that persist one-to-one at the "
            "neighbouring orders, fewest that split or merge"
        )
    why = {
        "order": (
            "given"
            if order is not None
            else f"{rule} (k = {pick['order']}: {pick['clusters']} "
            f"cluster{'' if pick['clusters'] == 1 else 's'} holding "
            f"{100 * pick['solute_fraction_clustered']:.1f} % of the solutes; orders tried "
            f"{', '.join(str(r['order']) for r in rows)})"
        ),
        "dmax": (
            "given"
            if dmax is not None
            else f"{100 * RANDOM_CORE_FRACTION:g} % quantile of the k-th (k = {pick['order']}) NN distance "
            "with shuffled labels (random solutes are cores 1 % of the time)"
        ),
        "n_min": (
            "given"
            if n_min is not None
            else f"{NMIN_MARGIN:g} x the largest cluster in {N_RANDOM_DRAWS} shuffled-label "
            f"draws ({pick['largest_random_cluster']}) + 1"
        ),
    }
    return {
        "order": int(pick["order"]),
        "dmax": float(pick["dmax_nm"]),
        "n_min": int(pick["n_min"]),
        "why": why,
        "candidates": rows,
        "clusters_random": pick["clusters_random"],
    }


def envelope_from_spacing(positions: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Envelope ``L`` and erosion ``e`` (nm) from the median nearest-neighbour
    distance ``a`` of all analysed ions: ``L = 1.4 a``, ``e = 2 a`` (one shell of
    ions round the solutes, then the shell touching the matrix removed).
    Returns ``(L, e, a)``."""
    pos = np.asarray(positions)
    rng = np.random.default_rng(seed + 3)
    sub = pos[rng.choice(len(pos), size=min(len(pos), 200_000), replace=False)]
    d = knn_distances(sub, 1)
    # a subsample of fraction f is sparser: scale back to the full density
    a = float(np.median(d)) * (len(sub) / max(len(pos), 1)) ** (1 / 3) if len(d) else 0.2
    return round(1.4 * a, 3), round(2.0 * a, 3), round(a, 4)


def randomized_verdict(
    n_found: int,
    n_random: float,
    ks_pvalue: float | None = None,
    solute_fraction: float | None = None,
) -> dict[str, Any]:
    """A consistent verdict from the cluster counts (found vs shuffled labels).

    ``significance_p`` is the Poisson probability of finding ``n_found`` or
    more clusters when the shuffled-label mean is ``n_random`` (at least
    0.1). Clustered: clusters were found and p < 1e-3, or (few large
    clusters) they hold at least 5 % of the solute ions while the
    nearest-neighbour distances differ from shuffled labels (KS p < 1e-3).
    Never calls the solutes clustered when no cluster was found.
    """
    from scipy.stats import poisson

    lam = max(float(n_random), 0.1)
    p = float(poisson.sf(n_found - 1, lam)) if n_found > 0 else 1.0
    ks_ok = ks_pvalue is not None and np.isfinite(ks_pvalue) and ks_pvalue < 1e-3
    share = solute_fraction is not None and solute_fraction >= 0.05
    clustered = n_found > 0 and (p < 1e-3 or (share and ks_ok))
    nn = ""
    if ks_pvalue is not None and np.isfinite(ks_pvalue):
        nn = f"; NN distances vs shuffled: KS p = {ks_pvalue:.2g}"
    held = ""
    if solute_fraction is not None and n_found > 0:
        held = f" holding {100 * solute_fraction:.1f} % of the solute ions"
    word = "cluster" if n_found == 1 else "clusters"
    if clustered:
        text = (
            f"solutes are clustered: {n_found} {word}{held} found vs {n_random:g} expected "
            f"with shuffled labels (p = {p:.2g}){nn}"
        )
    elif n_found == 0:
        text = (
            f"no clusters found ({n_random:g} with shuffled labels): no clusters of at least "
            f"n_min solute ions{nn}"
        )
    else:
        text = (
            f"not distinguishable from random: {n_found} {word}{held} found vs {n_random:g} "
            f"with shuffled labels (p = {p:.2g}){nn}"
        )
    return {
        "clusters_found": int(n_found),
        "clusters_in_shuffled": float(n_random),
        "significance_p": p,
        "solute_fraction_in_clusters": solute_fraction,
        "clustered": bool(clustered),
        "verdict": text,
    }
