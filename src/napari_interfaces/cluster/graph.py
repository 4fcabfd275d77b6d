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

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..core.errors import InputError, ParameterError
from .chips import ChipGrid

__all__ = ["FeatureTransform", "prepare_features", "knn_graph", "spatial_edges"]


@dataclass
class FeatureTransform:
    """Standardization, optional group balancing, PCA and L2 normalization of chip features.

    Fitted on the chips of one image (:meth:`fit`) and applied to the chips
    of any image (``transform(x)``), so chips of a series of images land in
    one feature space (see :mod:`.series`).

    Without ``groups`` columns are standardized (constant columns dropped).
    With ``groups`` (``{name: column indices}``, e.g. texture vs intensity)
    every group is standardized and divided by the square root of its first
    eigenvalue times ``weights[name]`` (multiple factor analysis), so a group
    of many correlated columns does not outweigh a group of few; the
    resulting weighting is in :attr:`report`.

    Attributes
    ----------
    columns : (M,) int
        Raw feature columns used, in order.
    mean, scale : (M,) float
        Subtracted and divided per column (``scale`` includes group weights).
    components : (M, P) float or None
        PCA projection (``None``: no PCA).
    report : dict
        ``{"method", "groups": {name: {"columns", "weight", "scale",
        "variance_share"}}}``.
    lift : float
        Constant column appended before the L2 normalization (``lift`` x the
        reference's RMS row norm; 0 = none): cosine neighbours then
        approximate Euclidean ones, so a region whose features sit near the
        mean is not lost (see :func:`.features.prepare_weighted`).
    """

    columns: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray | None = None
    n_features: int = 0
    grouped: bool = False
    report: dict = field(default_factory=dict)
    lift: float = 0.0

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        pca: int | None = 10,
        groups: dict[str, np.ndarray] | None = None,
        weights: dict[str, float] | None = None,
        lift: float = 1.0,
    ) -> FeatureTransform:
        """Fit on ``(N, D)`` raw features (N >= 2).

        ``lift`` applies with ``groups`` only (without groups: the plain cosine
        similarity of the standardized columns).
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InputError(
                f"need a (chips, features) array with at least 2 chips, got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise InputError("features contain NaN or infinite values")
        if groups is None:
            return cls._fit_plain(x, pca)
        return cls._fit_groups(x, pca, groups, weights, lift)

    @classmethod
    def _fit_plain(cls, x: np.ndarray, pca: int | None) -> FeatureTransform:
        mu = x.mean(0)
        sd = x.std(0)
        keep = sd > 1e-6 * max(1.0, float(np.abs(mu).max(initial=0.0)))
        cols = np.nonzero(keep)[0]
        rep = {"method": "standardized columns", "groups": {}}
        t = cls(cols, mu[keep], sd[keep], None, x.shape[1], False, rep)
        if keep.any() and pca and len(cols) > pca:
            z = (x[:, keep] - mu[keep]) / sd[keep]
            cov = (z.T @ z) / len(z)
            w, v = np.linalg.eigh(cov.astype(np.float64))
            order = np.argsort(w)[::-1][:pca]
            v = v[:, order]
            v *= np.sign(v[np.abs(v).argmax(0), np.arange(v.shape[1])])  # deterministic signs
            t.components = v.astype(np.float32)
        return t

    @classmethod
    def _fit_groups(cls, x, pca, groups, weights, lift=1.0) -> FeatureTransform:
        weights = dict(weights or {})
        unknown = set(weights) - set(groups)
        if unknown:
            raise ParameterError(
                "feature_weights",
                f"unknown feature groups {sorted(unknown)}; groups: {sorted(groups)}",
            )
        cols, mus, scales, names, report = [], [], [], [], {}
        for name, idx in groups.items():
            idx = np.asarray(idx, np.int64)
            w = float(weights.get(name, 1.0))
            if not np.isfinite(w) or w < 0:
                raise ParameterError("feature_weights", f"{name} must be >= 0, got {w}")
            entry = {"columns": int(idx.size), "weight": w, "scale": 0.0, "variance_share": 0.0}
            report[name] = entry
            if idx.size == 0 or w == 0:
                continue
            b = x[:, idx].astype(np.float64)
            mu, sd = b.mean(0), b.std(0)
            keep = sd > 1e-6 * max(1.0, float(np.abs(mu).max(initial=0.0)))
            if not keep.any():
                continue
            z = (b[:, keep] - mu[keep]) / sd[keep]
            lam1 = float(np.linalg.eigvalsh((z.T @ z) / len(z))[-1]) if z.shape[1] > 1 else 1.0
            g = np.sqrt(w / max(lam1, 1e-12))
            entry["scale"] = round(float(g), 6)
            cols.append(idx[keep])
            mus.append(mu[keep])
            scales.append(sd[keep] / g)
            names += [name] * int(keep.sum())
        method = (
            "MFA: standardized columns, each group / sqrt(its first eigenvalue) x sqrt(weight)"
        )
        if not cols:
            return cls(
                np.zeros(0, np.int64), np.zeros(0), np.ones(0), None, x.shape[1], True,
                {"method": "MFA", "groups": report},
            )  # fmt: skip
        t = cls(
            np.concatenate(cols), np.concatenate(mus), np.concatenate(scales), None,
            x.shape[1], True, {"method": method, "groups": report},
        )  # fmt: skip
        z = (x[:, t.columns].astype(np.float64) - t.mean) / t.scale
        names = np.asarray(names)
        if pca and z.shape[1] > pca:
            ev, v = np.linalg.eigh((z.T @ z) / len(z))
            order = np.argsort(ev)[::-1][:pca]
            ev, v = ev[order], v[:, order]
            v *= np.sign(v[np.abs(v).argmax(0), np.arange(v.shape[1])])
            share = (v**2) * ev[None, :]  # variance of each kept component by column
            t.components = v
        else:
            share = np.diag(np.var(z, axis=0))
        tot = float(share.sum()) or 1.0
        for name in report:
            report[name]["variance_share"] = round(float(share[names == name].sum()) / tot, 4)
        if lift > 0:
            z = z @ t.components if t.components is not None else z
            r = float(np.sqrt(np.mean(np.sum(z * z, axis=1))))
            t.lift = float(lift) * max(r, 1e-12)
        t.report = {"method": method, "lift": float(lift), "groups": report}
        return t

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Prepared ``(N, P)`` float32 unit rows for the cosine kNN graph."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(
                f"expected {self.n_features} features per chip, got {x.shape[-1]} "
                "(another extractor, chip size or number of channels?)"
            )
        if self.columns.size == 0:
            return np.ones((x.shape[0], 1), np.float32)
        if self.grouped:
            z = (x[:, self.columns].astype(np.float64) - self.mean) / self.scale
            if self.components is not None:
                z = z @ self.components
            if self.lift > 0:
                z = np.concatenate([z, np.full((len(z), 1), self.lift)], axis=1)
            z = z.astype(np.float32)
        else:
            z = (x[:, self.columns] - self.mean) / self.scale
            if self.components is not None:
                z = z @ self.components
        n = np.linalg.norm(z, axis=1, keepdims=True)
        return z / np.maximum(n, 1e-12)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (read back with :meth:`from_arrays`)."""
        comp = self.components if self.components is not None else np.zeros((0, 0))
        return {
            "columns": self.columns,
            "mean": np.asarray(self.mean, np.float64),
            "scale": np.asarray(self.scale, np.float64),
            "components": np.asarray(comp, np.float64),
            "n_features": np.asarray(self.n_features),
            "grouped": np.asarray(self.grouped),
            "lift": np.asarray(self.lift),
        }

    @classmethod
    def from_arrays(cls, a: dict, report: dict | None = None) -> FeatureTransform:
        grouped = bool(a["grouped"])
        dt = np.float64 if grouped else np.float32
        comp = np.asarray(a["components"], dt)
        return cls(
            np.asarray(a["columns"], np.int64),
            np.asarray(a["mean"], dt),
            np.asarray(a["scale"], dt),
            comp if comp.size else None,
            int(a["n_features"]),
            grouped,
            dict(report or {}),
            float(a["lift"]) if "lift" in a else 0.0,
        )


def prepare_features(features: np.ndarray, pca: int | None = 10, seed: int = 0) -> np.ndarray:
    """Standardize columns, PCA to ``pca`` components (if fewer than columns), L2-normalize rows.

    Constant columns are dropped. Returns ``float32``. The same as
    ``FeatureTransform.fit(features, pca)(features)``.
    """
    return FeatureTransform.fit(features, pca=pca)(features)


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
        raise ParameterError("k", f"must be at least 1, got {k}")
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
