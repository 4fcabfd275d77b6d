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

    from .clusters import _filter_and_number, link_solutes

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
