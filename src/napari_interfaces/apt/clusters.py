"""Cluster analysis of solute atoms: maximum separation, DBSCAN, HDBSCAN.

The tool atom-probe users apply to small precipitates and solute clusters
(AP Suite/IVAS "cluster analysis", 3Depict, paraprobe-clusterer). Works on
**ions** (positions in nm, one range species per ion); an ion is a solute
ion when its species contains one of the chosen solute elements.
Compositions decompose molecular ions (see :mod:`.cluster_stats`).

Maximum separation method (Hyde & English 2000; Vaumousse et al. 2003):

1. *Core*: with order ``k = 1`` every solute ion; with ``k > 1`` the solute
   ions whose k-th nearest solute neighbour is within ``dmax``.
2. *Linkage*: core ions closer than ``dmax`` belong to the same cluster
   (connected components of the ``dmax`` graph); with ``k > 1`` the other
   solute ions within ``dmax`` of a core ion join its cluster.
3. *Nmin*: clusters with fewer than ``n_min`` solute ions are dropped.
4. *Envelope*: every other ranged ion within ``envelope_nm`` (``L``,
   default ``dmax``) of a cluster's solute ion joins that cluster.
5. *Erosion*: envelope ions (not the solute ions of step 2) within
   ``erosion_nm`` of an unclustered ion are removed again (the envelope
   overshoots the cluster's edge by about ``L``).

DBSCAN (``eps = dmax``, ``min_samples = k + 1``) and HDBSCAN
(``min_cluster_size = min_samples = n_min``) from scikit-learn replace steps
1-2; steps 3-5 are the same for all three methods. HDBSCAN has no distance
scale: in a dilute matrix it also returns the densest random groups of
solutes as clusters (see the benchmark); prefer maximum separation or DBSCAN
with the randomized-label check there.

Labels: ``0`` matrix, ``1..N`` cluster (numbered by decreasing size),
``-1`` unranged ions (not analysed).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.apt.clusters import max_separation
>>> rng = np.random.default_rng(0)
>>> xyz = np.concatenate([rng.uniform(0, 10, (2000, 3)), rng.normal(5, 0.2, (20, 3))])
>>> solute = np.r_[np.zeros(2000, bool), np.ones(20, bool)]
>>> lab = max_separation(xyz, solute, dmax=0.5, n_min=10, envelope_nm=0.0)
>>> int(lab.max()), int((lab[solute] == 1).sum())
(1, 20)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from .linking import _filter_and_number, _tree, link_solutes

__all__ = [
    "CLUSTER_METHODS",
    "ClusterAnalysis",
    "ClusterInputs",
    "ClusterParams",
    "cluster_dataset",
    "cluster_ions",
    "dbscan_clusters",
    "envelope_and_erode",
    "find_clusters",
    "hdbscan_clusters",
    "link_solutes",
    "max_separation",
    "solute_mask",
    "write_cluster_results",
]

CLUSTER_METHODS = ("maxsep", "dbscan", "hdbscan")


#: A dense group must hold this share of a cluster's dense cores to split it off.
SPLIT_SHARE = 0.1


def split_linked(
    solute_xyz: np.ndarray, comp: np.ndarray, order: int, dmax: float, n_min: int
) -> np.ndarray:
    """Split clusters that are joined only through the matrix (a neck of a few
    solutes between two dense cores).

    In each component of at least ``2 n_min`` solutes the *dense* cores (k-th
    NN within ``0.7 dmax``) are linked again at ``0.7 dmax``; when this gives two
    or more groups of at least ``n_min`` dense cores and :data:`SPLIT_SHARE` of
    the component's dense cores each, with centres more than ``2 dmax``
    apart, every solute of the
    component goes to the group of its nearest dense core. Returns new
    component labels (``-1`` kept).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    s = np.asarray(solute_xyz, np.float64)
    out = comp.copy()
    if not (comp >= 0).any():
        return out
    strict = 0.7 * dmax
    nxt = int(comp.max()) + 1
    ids, cnt = np.unique(comp[comp >= 0], return_counts=True)
    for cid in ids[cnt >= 2 * n_min]:
        mem = np.flatnonzero(comp == cid)
        p = s[mem]
        kk = min(max(order, 1) + 1, len(p))
        dk, _ = cKDTree(p).query(p, k=kk)
        dense = np.flatnonzero(dk.reshape(len(p), kk)[:, -1] <= strict)
        if len(dense) < 2 * max(n_min, 2):
            continue
        tree = cKDTree(p[dense])
        pairs = tree.query_pairs(strict, output_type="ndarray")
        m = len(dense)
        g = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
        _, sub = connected_components(g, directed=False)
        sid, scnt = np.unique(sub, return_counts=True)
        # groups that are a real part of the cluster (a continuous phase falls apart
        # into many small dense groups: no split)
        big = sid[scnt >= max(n_min, 2, int(np.ceil(SPLIT_SHARE * m)))]
        if len(big) < 2:
            continue
        # only groups whose centres are more than 2 dmax apart (separate particles,
        # not lobes of one noisy cluster), largest first
        big = big[np.argsort(-scnt[np.searchsorted(sid, big)], kind="stable")]
        cen = [p[dense[sub == b]].mean(axis=0) for b in big]
        acc: list[int] = []
        for i in range(len(big)):
            if all(np.linalg.norm(cen[i] - cen[j]) > 2 * dmax for j in acc):
                acc.append(i)
        big = big[acc]
        if len(big) < 2:
            continue
        keep = np.isin(sub, big)
        _, j = cKDTree(p[dense[keep]]).query(p, k=1)
        group = sub[keep][j]
        for gi, g_id in enumerate(np.unique(group)):
            if gi == 0:
                continue
            out[mem[group == g_id]] = nxt
            nxt += 1
    return out


def dbscan_clusters(solute_xyz: np.ndarray, eps: float, min_samples: int = 2) -> np.ndarray:
    """DBSCAN labels of solute positions (``-1`` noise), scikit-learn."""
    from sklearn.cluster import DBSCAN

    s = np.asarray(solute_xyz, np.float64)
    if len(s) == 0:
        return np.zeros(0, np.int64)
    return DBSCAN(eps=eps, min_samples=min_samples, n_jobs=1).fit_predict(s).astype(np.int64)


def hdbscan_clusters(
    solute_xyz: np.ndarray, min_cluster_size: int = 10, min_samples: int | None = None
) -> np.ndarray:
    """HDBSCAN labels of solute positions (``-1`` noise), scikit-learn."""
    from sklearn.cluster import HDBSCAN

    s = np.asarray(solute_xyz, np.float64)
    if len(s) < max(2, min_cluster_size):
        return np.full(len(s), -1, np.int64)
    h = HDBSCAN(min_cluster_size=max(2, min_cluster_size), min_samples=min_samples, copy=True)
    return h.fit_predict(s).astype(np.int64)


def envelope_and_erode(
    xyz: np.ndarray,
    core_labels: np.ndarray,
    analysed: np.ndarray,
    envelope_nm: float,
    erosion_nm: float = 0.0,
) -> np.ndarray:
    """Steps 4-5: add ions within ``envelope_nm`` of a cluster's core ions to
    that cluster (nearest core ion), then remove envelope ions within
    ``erosion_nm`` of an unclustered ion. ``analysed`` marks the ions that may
    join (ranged ions); ``core_labels`` are per ion (0 = none)."""
    labels = core_labels.astype(np.int32).copy()
    core = np.flatnonzero(labels > 0)
    if len(core) == 0 or envelope_nm <= 0:
        return labels
    xyz = np.asarray(xyz)
    lo = xyz[core].min(axis=0) - envelope_nm - erosion_nm
    hi = xyz[core].max(axis=0) + envelope_nm + erosion_nm
    cand = np.flatnonzero(analysed & (labels == 0) & np.all((xyz >= lo) & (xyz <= hi), axis=1))
    if len(cand) == 0:
        return labels
    tree = _tree(xyz[core])
    reach = envelope_nm + erosion_nm
    d, j = tree.query(
        np.asarray(xyz[cand], np.float64), k=1, distance_upper_bound=reach, workers=-1
    )
    near = np.isfinite(d)
    env = near & (d <= envelope_nm)
    env_idx = cand[env]
    labels[env_idx] = labels[core[j[env]]]
    if erosion_nm > 0 and len(env_idx):
        # unclustered ions that can be within erosion_nm of an envelope ion
        outside = cand[near & ~env]
        if len(outside):
            d2, _ = _tree(xyz[outside]).query(
                np.asarray(xyz[env_idx], np.float64),
                k=1,
                distance_upper_bound=erosion_nm,
                workers=-1,
            )
            labels[env_idx[np.isfinite(d2)]] = 0
    return labels


def max_separation(
    xyz: np.ndarray,
    solute: np.ndarray,
    dmax: float = 0.5,
    order: int = 1,
    n_min: int = 10,
    envelope_nm: float | None = None,
    erosion_nm: float = 0.0,
    analysed: np.ndarray | None = None,
) -> np.ndarray:
    """Maximum separation method (module docstring): per-ion labels, 0 = matrix.

    Parameters
    ----------
    xyz : (n, 3) positions in nm
    solute : (n,) bool, the solute ions
    dmax : float
        Maximum separation (nm) between linked solute ions.
    order : int
        ``k``: a core solute ion has ``k`` solute neighbours within ``dmax``.
    n_min : int
        Minimum number of solute ions in a cluster.
    envelope_nm, erosion_nm : float
        ``L`` (default ``dmax``) and the erosion distance (nm).
    analysed : (n,) bool, optional
        Ions that may join the envelope (default all).
    """
    return cluster_ions(
        xyz, solute, "maxsep", dmax, order, n_min, envelope_nm, erosion_nm, analysed
    )


def cluster_ions(
    xyz: np.ndarray,
    solute: np.ndarray,
    method: str = "maxsep",
    dmax: float = 0.5,
    order: int = 1,
    n_min: int = 10,
    envelope_nm: float | None = None,
    erosion_nm: float = 0.0,
    analysed: np.ndarray | None = None,
) -> np.ndarray:
    """Per-ion cluster labels with ``method`` (``maxsep``, ``dbscan``, ``hdbscan``)."""
    solute = np.asarray(solute, bool)
    idx = np.flatnonzero(solute)
    s = np.asarray(xyz[idx], np.float64)
    if method == "maxsep":
        comp = link_solutes(s, dmax, order)
    elif method == "dbscan":
        comp = dbscan_clusters(s, dmax, order + 1)
    elif method == "hdbscan":
        comp = hdbscan_clusters(s, n_min, max(order + 1, n_min))
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(CLUSTER_METHODS)}")
    sol_lab = _filter_and_number(comp, n_min)
    labels = np.zeros(len(solute), np.int32)
    labels[idx] = sol_lab
    env = dmax if envelope_nm is None else envelope_nm
    if analysed is None:
        analysed = np.ones(len(solute), bool)
    return envelope_and_erode(xyz, labels, analysed, env, erosion_nm)


def solute_mask(species: np.ndarray, ranges, solutes: list[str]) -> np.ndarray:
    """Ions whose range species contains one of ``solutes`` (elements)."""
    dec = np.asarray(ranges.decomposition())
    els = list(ranges.elements)
    missing = [e for e in solutes if e not in els]
    if missing:
        raise ParameterError("solutes", f"element(s) {missing} not in the range file (has {els})")
    cols = [els.index(e) for e in solutes]
    is_sol_species = dec[:, cols].sum(axis=1) > 0
    lut = np.r_[is_sol_species, False]  # species -1 (unranged) -> last entry
    return lut[np.asarray(species, np.int64)]


@dataclass
class ClusterAnalysis:
    """Result of :func:`find_clusters`.

    Attributes
    ----------
    labels : (n_ions,) int32: 0 matrix, 1..N cluster, -1 unranged
    clusters : list of dict, one row per cluster (see
        :func:`~napari_interfaces.apt.cluster_stats.cluster_table`)
    summary : dict: parameters, number density, matrix composition, size
        distribution, randomized-label check, suggested parameters
    nn_check : NNCheck or None (the randomized-label check with its histograms)
    elements : list of str
    """

    labels: np.ndarray
    clusters: list[dict[str, Any]]
    summary: dict[str, Any]
    nn_check: Any = None
    elements: list[str] = field(default_factory=list)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)


#: The bound of the envelope and erosion distances ("auto": chosen from the data).
_SHELL_NM = {"unit": "nm", "lo": 0, "hi": 10.0, "none": "auto", "step": 0.05}


@dataclass(frozen=True)
class ClusterParams(Spec):
    """Cluster analysis of solute atoms (``apt clusters``, the APT cluster analysis dock).

    ``None`` ("auto") for ``dmax``, ``order``, ``n_min``, ``envelope_nm`` or
    ``erosion_nm`` means "choose from the data" (:func:`find_clusters`).
    """

    method: str = param(
        "maxsep",
        "maxsep: maximum separation (AP Suite/IVAS); dbscan: DBSCAN (eps = dmax); hdbscan",
        choices=CLUSTER_METHODS,
        choice_labels={"maxsep": "maximum separation", "dbscan": "DBSCAN", "hdbscan": "HDBSCAN"},
    )
    dmax: float | None = param(
        None,
        "maximum separation of linked solute ions / DBSCAN eps (auto: chosen from the data "
        "against shuffled labels; DBSCAN/HDBSCAN 0.5)",
        unit="nm",
        lo=0,
        lo_open=True,
        hi=10.0,
        none="auto",
        step=0.05,
    )
    order: int | None = param(
        None,
        "order k: a core solute has k solute neighbours within dmax (auto: chosen from the data)",
        lo=1,
        hi=50,
        none="auto",
    )
    n_min: int | None = param(
        None,
        "minimum solute ions per cluster (auto: chosen from the data)",
        lo=1,
        none="auto",
        alias="nmin",
        label="Nmin",
    )
    envelope_nm: float | None = param(
        None,
        "envelope distance L: matrix ions within L of a cluster's solutes join it (auto: "
        "1.4 x the ion spacing when chosen from the data, else dmax)",
        alias="envelope",
        label="envelope L",
        **_SHELL_NM,
    )
    erosion_nm: float | None = param(
        None,
        "envelope ions within this distance of unclustered ions are removed again (auto: "
        "2 x the ion spacing when chosen from the data, else 0)",
        alias="erosion",
        label="erosion",
        **_SHELL_NM,
    )
    efficiency: float | None = param(
        None,
        "detection efficiency (with the atomic volume: cluster volumes from atom counts)",
        lo=0,
        lo_open=True,
        hi=1,
        hi_open=True,
        none="unknown",
        advanced=True,
        step=0.01,
    )
    atomic_volume_nm3: float | None = param(
        None,
        "atomic volume (Fe: 0.01178; with the efficiency: cluster volumes)",
        unit="nm³",
        lo=0,
        lo_open=True,
        hi=1.0,
        none="unknown",
        alias="atomic_volume",
        label="atomic volume",
        advanced=True,
        step=0.001,
    )
    random_check: bool = param(
        True, "run the randomized-label check and suggest dmax and Nmin", advanced=True
    )
    seed: int = param(0, "seed of the label shuffle", lo=0, advanced=True)


@dataclass(frozen=True)
class ClusterInputs(Spec):
    """Inputs and outputs of ``apt clusters`` (the dock takes them from its own fields)."""

    file: Path | None = param(
        None, "point cloud: .pos .epos .apt ...", positional=True, metavar="FILE"
    )
    ranges: Path | None = param(None, "range file (default: same stem beside FILE)", gui=False)
    solutes: tuple[str, ...] | None = param(
        None,
        "solute elements, e.g. Cu Ni (required)",
        item=str,
        nargs="+",
        metavar="EL",
        none="required",
        gui=False,
    )
    out: Path | None = param(None, "output folder (required)", gui=False)
    overwrite: bool = param(False, "replace an existing output folder", gui=False)
    json: bool = param(False, "print the summary as JSON", gui=False)


#: The analysis parameters kept in the summary (``summary["parameters"]``).
_SUMMARY_KEYS = (
    "method",
    "dmax",
    "order",
    "n_min",
    "envelope_nm",
    "erosion_nm",
    "efficiency",
    "atomic_volume_nm3",
)


def find_clusters(
    xyz: np.ndarray,
    species: np.ndarray,
    ranges,
    solutes: list[str],
    params: ClusterParams | None = None,
    *,
    progress: Progress | None = None,
    **values: Any,
) -> ClusterAnalysis:
    """Cluster analysis of one dataset: labels, cluster table, summary.

    Parameters
    ----------
    xyz : (n, 3) ion positions in nm
    species : (n,) range species index per ion (``ranges.species_of(mass)``, -1 unranged)
    ranges : RangeTable
    solutes : elements whose ions are clustered (e.g. ``["Cu", "Ni"]``)
    params : ClusterParams, optional
        The parameters below (``values`` such as ``dmax=0.7`` are applied to it).
    method, dmax, order, n_min, envelope_nm, erosion_nm : optional
        See :func:`cluster_ions`. ``None`` (the default) chooses the value from
        the data: for maximum separation ``order``, ``dmax`` and ``n_min``
        against shuffled labels
        (:func:`~napari_interfaces.apt.cluster_stats.choose_parameters`), then
        clusters joined only through the matrix are split
        (:func:`split_linked`); ``envelope_nm`` and ``erosion_nm`` from the ion
        spacing (:func:`~napari_interfaces.apt.cluster_stats.envelope_from_spacing`).
        Values given are kept. Without any automatic value (all three of
        ``dmax``, ``order``, ``n_min`` given) the envelope is ``dmax`` and the
        erosion 0, as before. DBSCAN/HDBSCAN use dmax 0.5, order 1, n_min 10
        where not given.
    efficiency, atomic_volume_nm3 : float, optional
        Detection efficiency and atomic volume (nm³): give cluster volumes
        from atom counts and the analysed volume from the ion count; without
        them the analysed volume is the occupied 1 nm³ voxels.
    random_check : bool
        Run the randomized-label nearest-neighbour check and suggest ``dmax``
        and ``n_min`` (:mod:`.cluster_stats`).
    seed : int
        Seed of the label shuffle.
    """
    from . import cluster_stats as cs

    spec = ClusterParams.of(params, **values)
    p: dict[str, Any] = {k: getattr(spec, k) for k in _SUMMARY_KEYS}
    seed = spec.seed
    progress = as_progress(progress)
    progress.start(4, f"clusters ({p['method']})")
    xyz = np.ascontiguousarray(np.asarray(xyz, dtype=np.float32))
    species = np.asarray(species)
    if len(xyz) != len(species):
        raise InputError("positions and species must have the same length")
    analysed = species >= 0
    if not analysed.any():
        raise InputError("no ranged ions: check that the range file matches the data")
    sol = solute_mask(species, ranges, list(solutes)) & analysed
    if sol.sum() < 2:
        raise InputError(f"fewer than 2 solute ions ({', '.join(solutes)}) in the data")
    auto: dict[str, Any] | None = None
    if p["method"] == "maxsep" and None in (p["dmax"], p["order"], p["n_min"]):
        progress.advance(description="choosing order, dmax, n_min (shuffled labels)")
        auto = cs.choose_parameters(
            xyz[sol], xyz[analysed], p["order"], p["dmax"], p["n_min"], seed=seed
        )
        p["order"], p["dmax"], p["n_min"] = auto["order"], auto["dmax"], auto["n_min"]
        if p["envelope_nm"] is None or p["erosion_nm"] is None:
            L, e, a = cs.envelope_from_spacing(xyz[analysed], seed=seed)
            auto["why"]["envelope_erosion"] = (
                f"median ion spacing a = {a:g} nm: envelope 1.4 a, erosion 2 a"
            )
            if p["envelope_nm"] is None:
                p["envelope_nm"] = L
            if p["erosion_nm"] is None:
                p["erosion_nm"] = e
    else:
        progress.advance(description="linking solutes")
        p["dmax"] = 0.5 if p["dmax"] is None else p["dmax"]
        p["order"] = 1 if p["order"] is None else p["order"]
        p["n_min"] = 10 if p["n_min"] is None else p["n_min"]
        p["erosion_nm"] = 0.0 if p["erosion_nm"] is None else p["erosion_nm"]
    if auto is not None:
        idx = np.flatnonzero(sol)
        comp = split_linked(
            xyz[idx],
            link_solutes(xyz[idx], p["dmax"], p["order"]),
            p["order"],
            p["dmax"],
            p["n_min"],
        )
        core = np.zeros(len(sol), np.int32)
        core[idx] = _filter_and_number(comp, p["n_min"])
        labels = envelope_and_erode(xyz, core, analysed, p["envelope_nm"], p["erosion_nm"])
    else:
        labels = cluster_ions(
            xyz,
            sol,
            p["method"],
            p["dmax"],
            p["order"],
            p["n_min"],
            p["envelope_nm"],
            p["erosion_nm"],
            analysed,
        )
    labels[~analysed] = -1
    progress.advance(description="statistics")
    table = cs.cluster_table(
        xyz,
        species,
        labels,
        ranges,
        sol,
        efficiency=p["efficiency"],
        atomic_volume_nm3=p["atomic_volume_nm3"],
    )
    summary = cs.dataset_summary(
        xyz,
        species,
        labels,
        ranges,
        table,
        efficiency=p["efficiency"],
        atomic_volume_nm3=p["atomic_volume_nm3"],
    )
    summary["parameters"] = {"solutes": list(solutes), **p}
    if p["envelope_nm"] is None:
        summary["parameters"]["envelope_nm"] = p["dmax"]
    summary["parameters"]["chosen_from_data"] = auto is not None
    if auto is not None:
        summary["auto_parameters"] = {
            "chosen": {k: p[k] for k in ("order", "dmax", "n_min", "envelope_nm", "erosion_nm")},
            "why": auto["why"],
            "candidates": auto["candidates"],
        }
    progress.advance(description="randomized-label check")
    nn = None
    if spec.random_check:
        nn = cs.nn_check(xyz[sol], xyz[analysed], order=p["order"], seed=seed)
        rc = nn.summary(p["dmax"])
        if auto is not None:
            n_rand = float(auto.get("clusters_random", 0.0))
        else:
            sug = cs.suggest_parameters(
                nn, xyz[analysed], p["order"], p["dmax"], p["n_min"], seed=seed
            )
            n_rand = float(sug.pop("random_clusters_at_chosen"))
            summary["suggested"] = sug
        frac = float(np.mean(labels[sol] > 0)) if sol.any() else 0.0
        v = cs.randomized_verdict(len(table), n_rand, rc.get("ks_pvalue"), frac)
        rc["nn_distances_shorter"] = rc.pop("clustered")
        rc.update(v)
        summary["random_check"] = rc
    progress.advance()
    return ClusterAnalysis(labels, table, summary, nn, list(ranges.elements))


def cluster_dataset(
    dataset,
    solutes: list[str],
    params: ClusterParams | None = None,
    *,
    progress: Progress | None = None,
    **values: Any,
) -> ClusterAnalysis:
    """:func:`find_clusters` on an :class:`~napari_interfaces.apt.dataset.APTDataset`
    (the one workflow the CLI and the dock call); ``params`` and ``values`` as for
    :func:`find_clusters`."""
    ranges = dataset.require_ranges()
    cloud = dataset.cloud
    xyz = np.empty((cloud.n_ions, 3), np.float32)
    species = np.empty(cloud.n_ions, np.int16)
    for a, b in cloud.chunks():
        xyz[a:b] = cloud.xyz[a:b]
        species[a:b] = ranges.species_of(np.asarray(cloud.mass[a:b], np.float32))
    res = find_clusters(xyz, species, ranges, solutes, params, progress=progress, **values)
    res.summary["input"] = dataset.provenance.get("path")
    res.summary["range_file"] = dataset.provenance.get("range_file")
    return res


def write_cluster_results(res: ClusterAnalysis, cloud, folder) -> dict[str, Any]:
    """Write ``clusters.csv``, ``summary.json``, ``labels.npz`` (the point cloud
    with a cluster label per ion, :mod:`napari_interfaces.io.apt_labels`) and
    ``nn_check.png`` into ``folder`` (which must exist); returns the paths."""
    import csv
    import json
    from pathlib import Path

    from ..io.apt_labels import write_labelled_pointcloud

    folder = Path(folder)
    paths: dict[str, Any] = {}
    cols = list(res.clusters[0]) if res.clusters else ["cluster", "n_ions", "n_atoms"]
    with open(folder / "clusters.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(res.clusters)
    paths["clusters"] = folder / "clusters.csv"
    names = ["matrix"] + [f"cluster {k}" for k in range(1, res.n_clusters + 1)]
    write_labelled_pointcloud(
        folder / "labels.npz",
        cloud,
        res.labels,
        names,
        {"what": "cluster analysis", "unranged": -1, "matrix": 0},
    )
    paths["labels"] = folder / "labels.npz"
    if res.nn_check is not None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from .cluster_stats import plot_nn_check

        fig, ax = plt.subplots(figsize=(5.2, 3.5), dpi=110)
        sug = res.summary.get("suggested", {}).get("dmax_nm")
        plot_nn_check(res.nn_check, ax, dmax=res.summary["parameters"]["dmax"], suggested=sug)
        ax.set_title(res.summary["random_check"]["verdict"][:70], fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "nn_check.png")
        plt.close(fig)
        paths["nn_plot"] = folder / "nn_check.png"
    (folder / "summary.json").write_text(json.dumps(res.summary, indent=2, default=_jsonable))
    paths["summary"] = folder / "summary.json"
    return paths


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
