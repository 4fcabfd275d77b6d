"""Linking solute ions into clusters: the steps below the cluster pipeline.

Steps 1-2 of the maximum separation method (:func:`link_solutes`) and the size
filter that numbers the clusters (:func:`_filter_and_number`). Both the
pipeline (:mod:`.clusters`) and the parameter checks (:mod:`.cluster_stats`)
use them; this module imports neither.
"""

from __future__ import annotations

import numpy as np

__all__ = ["link_cores", "link_solutes"]


def _tree(xyz: np.ndarray):
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(xyz, np.float64), balanced_tree=False, compact_nodes=False)


def link_solutes(solute_xyz: np.ndarray, dmax: float, order: int = 1) -> np.ndarray:
    """Steps 1-2 of the maximum separation method on solute positions only.

    Returns a label per solute ion: ``-1`` unlinked, else a component index
    (not yet filtered by size).
    """
    s = np.asarray(solute_xyz, np.float64)
    n = len(s)
    if n < 2:
        return np.full(n, -1, np.int64)
    tree = _tree(s)
    if order > 1:
        dk, _ = tree.query(s, k=min(order + 1, n), workers=-1)
        core = np.flatnonzero(dk[:, -1] <= dmax) if n > order else np.zeros(0, np.int64)
    else:
        core = np.arange(n)
    if len(core) == 0:
        return np.full(n, -1, np.int64)
    ctree = _tree(s[core]) if order > 1 else tree
    return link_cores(s, core, dmax, ctree, attach=order > 1)


def link_cores(s: np.ndarray, core: np.ndarray, dmax: float, ctree, attach: bool) -> np.ndarray:
    """Link the ``core`` solutes within ``dmax`` (``ctree``: their k-d tree).

    Returns a label per solute of ``s``: the component of each linked core
    ion, ``-1`` for a core ion with no partner and for the other ions. With
    ``attach`` the other ions join the component of their nearest core ion
    within ``dmax`` (the maximum separation method's step 2 for ``order > 1``).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    out = np.full(len(s), -1, np.int64)
    pairs = ctree.query_pairs(dmax, output_type="ndarray")
    m = len(core)
    g = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    _, comp = connected_components(g, directed=False)
    # a core ion without partners is its own component: only linked ones count
    deg = np.bincount(pairs.ravel(), minlength=m) if len(pairs) else np.zeros(m, np.int64)
    comp = np.where(deg > 0, comp, -1)
    out[core] = comp
    if attach:
        rest = np.flatnonzero(out < 0)
        if len(rest):
            d, j = ctree.query(s[rest], k=1, distance_upper_bound=dmax, workers=-1)
            ok = np.isfinite(d) & (j < m)
            jj = np.minimum(j, m - 1)
            linked = ok & (comp[jj] >= 0)
            out[rest[linked]] = comp[jj[linked]]
    return out


def _filter_and_number(comp: np.ndarray, n_min: int) -> np.ndarray:
    """Drop components with fewer than ``n_min`` members; renumber 1..N by size."""
    out = np.zeros(len(comp), np.int32)
    ok = comp >= 0
    if not ok.any():
        return out
    ids, inv, cnt = np.unique(comp[ok], return_inverse=True, return_counts=True)
    keep = cnt >= n_min
    order = np.argsort(-cnt[keep], kind="stable")
    new = np.zeros(len(ids), np.int32)
    new[np.flatnonzero(keep)[order]] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    out[ok] = new[inv]
    return out
