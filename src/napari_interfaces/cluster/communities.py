"""Community detection on chip graphs, merging, and stable community IDs.

* :func:`louvain` -- our own Louvain (Blondel et al. 2008) on a
  ``scipy.sparse`` adjacency: seeded node order, resolution parameter,
  aggregation with sparse products. The local-moving loop is compiled with
  numba (a dependency; compiled on first use and cached on disk). The one
  Louvain in the package: the tests cross-check its modularity against
  :func:`networkx.community.louvain_communities` (networkx is a test-time
  reference here, not a dependency of this module).
* ``method="leiden"`` -- ``leidenalg`` + ``igraph`` if installed (GPL,
  optional; never required).
* :func:`merge_to` -- size-weighted Ward merging of communities on their mean
  features down to K.
* :func:`order_labels` / :func:`match_labels` -- deterministic IDs (by mean
  intensity) and IDs matched to a previous labelling (Hungarian).

Labels are ``1..K`` (0 is kept for "unlabelled" in napari).
"""

from __future__ import annotations

import random

import numpy as np
import scipy.sparse as sp

from ..core.errors import InputError, ParameterError

__all__ = [
    "louvain",
    "detect_communities",
    "modularity",
    "merge_to",
    "order_labels",
    "match_labels",
    "match_mapping",
    "METHODS",
]

METHODS = ("louvain", "leiden")


def modularity(adj: sp.spmatrix, labels: np.ndarray, resolution: float = 1.0) -> float:
    """Newman modularity of ``labels`` (any integers) on a symmetric adjacency."""
    a = sp.csr_matrix(adj)
    m2 = a.sum()
    if m2 <= 0:
        return 0.0
    _, lab = np.unique(labels, return_inverse=True)
    k = np.asarray(a.sum(1)).ravel()
    p = sp.csr_matrix((np.ones(len(lab)), (np.arange(len(lab)), lab)))
    inner = (p.T @ a @ p).diagonal().sum()
    tot = np.bincount(lab, weights=k)
    return float(inner / m2 - resolution * np.sum(tot**2) / m2**2)


def _kernel():
    """The numba-compiled local-moving loop (compiled on first use, cached on disk)."""
    from ..core.jit import compiled

    return compiled("cluster.communities.one_level", _build_kernel, required=True)


def _build_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def one_level(
        indptr, indices, data, k, order, resolution, tol, max_passes
    ):  # pragma: no cover
        n = k.shape[0]
        m2 = 0.0
        for i in range(n):
            m2 += k[i]
        tot = k.copy()  # community totals; community i starts as node i
        comm = np.arange(n)
        acc = np.zeros(n)
        seen = np.zeros(n, np.bool_)
        touched = np.empty(n, np.int64)
        g = resolution / m2
        improved = False
        for _ in range(max_passes):
            moves = 0
            for i in order:
                ci = comm[i]
                ki = k[i]
                nt = 0
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    if j == i:
                        continue
                    cj = comm[j]
                    if not seen[cj]:
                        seen[cj] = True
                        touched[nt] = cj
                        nt += 1
                    acc[cj] += data[p]
                tot[ci] -= ki
                best = ci
                best_gain = acc[ci] - g * tot[ci] * ki
                for t in range(nt):
                    c = touched[t]
                    gain = acc[c] - g * tot[c] * ki
                    if gain > best_gain + tol:
                        best = c
                        best_gain = gain
                for t in range(nt):
                    c = touched[t]
                    acc[c] = 0.0
                    seen[c] = False
                tot[best] += ki
                if best != ci:
                    comm[i] = best
                    moves += 1
            if moves == 0:
                break
            improved = True
        return comm, improved

    return one_level


def _one_level(
    a: sp.csr_matrix,
    resolution: float,
    rng: random.Random,
    tol: float = 1e-7,
    max_passes: int = 50,
):
    """Local moving phase (numba kernel); returns ``(membership array, improved?)``."""
    n = a.shape[0]
    k = np.asarray(a.sum(1), np.float64).ravel()
    order_list = list(range(n))
    rng.shuffle(order_list)
    comm, improved = _kernel()(
        a.indptr.astype(np.int64),
        a.indices.astype(np.int64),
        a.data.astype(np.float64),
        k,
        np.asarray(order_list, np.int64),
        float(resolution),
        float(tol),
        int(max_passes),
    )
    return np.asarray(comm), bool(improved)


def louvain(
    adj: sp.spmatrix, resolution: float = 1.0, seed: int = 0, max_levels: int = 20
) -> np.ndarray:
    """Louvain communities of a symmetric weighted graph.

    Parameters
    ----------
    adj : (N, N) sparse matrix
        Symmetric non-negative weights.
    resolution : float
        > 1 gives more, smaller communities; < 1 fewer, larger ones.
    seed : int
        Seed of the node visiting order (results are reproducible).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` community index ``0..K-1`` (unordered).
    """
    a = sp.csr_matrix(adj, dtype=np.float64)
    n = a.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    rng = random.Random(int(seed))
    membership = np.arange(n)
    for _ in range(max_levels):
        comm, improved = _one_level(a, float(resolution), rng)
        _, comm = np.unique(comm, return_inverse=True)
        membership = comm[membership]
        nc = int(comm.max()) + 1
        if not improved or nc == a.shape[0]:
            break
        p = sp.csr_matrix(
            (np.ones(len(comm)), (np.arange(len(comm)), comm)), shape=(len(comm), nc)
        )
        a = (p.T @ a @ p).tocsr()
        if nc == 1:
            break
    return membership


def detect_communities(
    adj: sp.spmatrix, method: str = "louvain", resolution: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Communities by name of method (see module docstring); ``(N,)`` ints from 0."""
    method = method.lower()
    if method == "louvain":
        return louvain(adj, resolution, seed)
    if method == "leiden":
        try:
            import igraph as ig
            import leidenalg
        except ImportError as exc:
            raise InputError(
                "method 'leiden' needs the optional packages leidenalg and igraph (GPL; "
                "`pip install leidenalg`); the default 'louvain' needs nothing extra"
            ) from exc
        a = sp.triu(sp.csr_matrix(adj), k=1).tocoo()
        g = ig.Graph(n=adj.shape[0], edges=list(zip(a.row.tolist(), a.col.tolist())))
        g.es["weight"] = a.data.tolist()
        part = leidenalg.find_partition(
            g,
            leidenalg.RBConfigurationVertexPartition,
            weights="weight",
            resolution_parameter=resolution,
            seed=seed,
        )
        return np.asarray(part.membership, np.int64)
    raise ParameterError(
        "method", f"unknown community method {method!r}; choose one of {', '.join(METHODS)}"
    )


def merge_to(labels: np.ndarray, features: np.ndarray, n: int) -> np.ndarray:
    """Merge communities to at most ``n`` by size-weighted Ward on mean features.

    ``labels`` are ``0..K-1``; returns labels ``0..min(K, n)-1``. Fewer
    communities than ``n`` are returned unchanged.
    """
    labels = np.asarray(labels)
    _, lab = np.unique(labels, return_inverse=True)
    kc = int(lab.max()) + 1
    n = int(n)
    if n < 1:
        raise ParameterError("merge_to", f"must be at least 1, got {n}")
    if kc <= n:
        return lab
    x = np.asarray(features, np.float64)
    size = np.bincount(lab, minlength=kc).astype(np.float64)
    mean = np.zeros((kc, x.shape[1]))
    np.add.at(mean, lab, x)
    mean /= size[:, None]
    group = np.arange(kc)
    alive = list(range(kc))
    while len(alive) > n:
        m = mean[alive]
        s = size[alive]
        d2 = ((m[:, None, :] - m[None, :, :]) ** 2).sum(-1)
        cost = d2 * (s[:, None] * s[None, :]) / (s[:, None] + s[None, :])
        np.fill_diagonal(cost, np.inf)
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        a, b = alive[min(i, j)], alive[max(i, j)]
        mean[a] = (mean[a] * size[a] + mean[b] * size[b]) / (size[a] + size[b])
        size[a] += size[b]
        group[group == b] = a
        alive.remove(b)
    _, out = np.unique(group[lab], return_inverse=True)
    return out


def order_labels(labels: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Renumber communities ``1..K`` by increasing mean of ``key`` (ties: size).

    Deterministic across reruns whatever numbering the detector returned.
    """
    _, lab = np.unique(labels, return_inverse=True)
    kc = int(lab.max()) + 1
    size = np.bincount(lab, minlength=kc)
    mean = np.bincount(lab, weights=np.asarray(key, np.float64), minlength=kc) / np.maximum(
        size, 1
    )
    order = np.lexsort((-size, np.round(mean, 9)))
    rank = np.empty(kc, np.int64)
    rank[order] = np.arange(kc)
    return rank[lab] + 1


def match_labels(labels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Renumber ``labels`` so they agree best with ``reference`` (Hungarian on overlaps).

    Both are integer arrays of the same shape; 0 in ``reference`` is ignored.
    Communities without a partner get the next free IDs.
    """
    labels = np.asarray(labels)
    mapping = match_mapping(labels, reference)
    if not mapping:
        return labels.copy()
    lut = np.arange(int(labels.max()) + 1)
    for a, b in mapping.items():
        lut[a] = b
    return lut[labels]


def match_mapping(labels: np.ndarray, reference: np.ndarray) -> dict[int, int]:
    """``{new_id: matched_id}`` for :func:`match_labels` (empty if nothing to match)."""
    from scipy.optimize import linear_sum_assignment

    labels = np.asarray(labels)
    reference = np.asarray(reference)
    if labels.shape != reference.shape:
        raise InputError(
            f"reference labels {reference.shape} do not match the labels {labels.shape}"
        )
    new_ids = np.unique(labels[labels > 0])
    ref_ids = np.unique(reference[reference > 0])
    if len(new_ids) == 0 or len(ref_ids) == 0:
        return {}
    li = np.searchsorted(new_ids, labels)
    ri = np.searchsorted(ref_ids, reference)
    ok = (labels > 0) & (reference > 0)
    overlap = np.zeros((len(new_ids), len(ref_ids)))
    np.add.at(overlap, (li[ok], ri[ok]), 1)
    r, c = linear_sum_assignment(-overlap)
    mapping = {}
    for a, b in zip(r, c):
        if overlap[a, b] > 0:
            mapping[int(new_ids[a])] = int(ref_ids[b])
    nxt = int(max(ref_ids.max(), 0)) + 1
    for a in new_ids:
        if int(a) not in mapping:
            mapping[int(a)] = nxt
            nxt += 1
    return mapping
