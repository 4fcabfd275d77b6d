"""Chip similarity graphs: cosine k-nearest neighbours, optional spatial edges.

Features are standardized per column, optionally reduced by PCA, and
L2-normalized per row, so Euclidean neighbours are cosine neighbours. Edge
weights are the cosine similarities clipped to ``[min_weight, 1]``; the graph
is made symmetric with the maximum of both directions.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.graph import knn_graph
>>> x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
>>> a = knn_graph(x, k=5)
>>> a.shape, bool((abs(a - a.T)).max() == 0)
((50, 50), True)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .chips import ChipGrid

__all__ = ["prepare_features", "knn_graph", "spatial_edges"]


def prepare_features(features: np.ndarray, pca: int | None = 10, seed: int = 0) -> np.ndarray:
    """Standardize columns, PCA to ``pca`` components (if fewer than columns), L2-normalize rows.

    Constant columns are dropped. Returns ``float32``.
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a (chips, features) array with at least 2 chips, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    mu = x.mean(0)
    sd = x.std(0)
    keep = sd > 1e-6 * max(1.0, float(np.abs(mu).max(initial=0.0)))
    if not keep.any():
        return np.ones((x.shape[0], 1), np.float32)
    x = (x[:, keep] - mu[keep]) / sd[keep]
    if pca and x.shape[1] > pca:
        # randomized-free exact PCA via the covariance (few columns)
        cov = (x.T @ x) / len(x)
        w, v = np.linalg.eigh(cov.astype(np.float64))
        order = np.argsort(w)[::-1][:pca]
        v = v[:, order]
        v *= np.sign(v[np.abs(v).argmax(0), np.arange(v.shape[1])])  # deterministic signs
        x = x @ v.astype(np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _knn(x: np.ndarray, k: int, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    tree = cKDTree(x)
    d, i = tree.query(x, k=k + 1, workers=workers)
    return d[:, 1:], i[:, 1:]


def knn_graph(
    features: np.ndarray,
    k: int = 10,
    pca: int | None = 10,
    min_weight: float = 1e-3,
    prepared: bool = False,
    grid: ChipGrid | None = None,
    spatial_weight: float = 0.0,
) -> sp.csr_matrix:
    """Symmetric cosine kNN graph of chips as a weighted CSR adjacency matrix.

    Parameters
    ----------
    features : (N, D) array
        Chip features (raw; see :func:`prepare_features`).
    k : int
        Neighbours per chip (clipped to ``N - 1``).
    pca : int or None
        Components kept before the search (speed on large images).
    prepared : bool
        ``features`` are already from :func:`prepare_features`.
    grid, spatial_weight : ChipGrid, float
        With a grid and ``spatial_weight > 0``, also link 4-adjacent chips
        with weight ``spatial_weight * max(cosine, min_weight)``.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x = features if prepared else prepare_features(features, pca=pca)
    n = len(x)
    k = min(k, n - 1)
    dist, idx = _knn(x, k)
    sim = 1.0 - 0.5 * dist.astype(np.float64) ** 2  # unit vectors: cos = 1 - d^2 / 2
    w = np.clip(sim, min_weight, 1.0).ravel()
    rows = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((w, (rows, idx.ravel())), shape=(n, n))
    a = a.maximum(a.T).tocsr()
    if grid is not None and spatial_weight > 0:
        a = (a + spatial_edges(grid, x, spatial_weight, min_weight)).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    return a


def spatial_edges(
    grid: ChipGrid, x: np.ndarray, weight: float = 0.5, min_weight: float = 1e-3
) -> sp.csr_matrix:
    """Edges between 4-adjacent chips, weighted by ``weight * cosine`` (rows of ``x`` unit)."""
    idx = np.arange(grid.n_chips).reshape(grid.rows, grid.cols)
    pairs = [
        np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
        np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1),
    ]
    p = np.concatenate(pairs)
    cos = np.einsum("ij,ij->i", x[p[:, 0]], x[p[:, 1]])
    w = weight * np.clip(cos, min_weight, 1.0)
    n = grid.n_chips
    a = sp.csr_matrix((w, (p[:, 0], p[:, 1])), shape=(n, n))
    return (a + a.T).tocsr()
