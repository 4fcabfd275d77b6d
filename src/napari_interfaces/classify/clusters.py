"""Feature-space clusters: a few strokes speak for the feature-space mode they sit in.

A forest trained on a few spatially concentrated strokes labels each pixel
from its own features; where the strokes cover only a corner of a class's
cloud in feature space, pixels of the same mode elsewhere in the image get
scattered, noisy answers. This step uses the unlabelled pixels' structure
(the cluster assumption of semi-supervised learning): the image's pixels are
grouped by k-means on the first principal components of their features
(:func:`feature_clusters`, computed once per image and kept with the
features), and each pixel's class probabilities are pulled towards the mean
of its cluster (:func:`smooth_in_clusters`):

``p' = w * p + (1 - w) * mean_{cluster(p)}``

Clusters live in feature space, not in the image plane: a label painted on a
few pixels still spreads to every region with its texture (the corrections
test of issue 24), which the spatial regularizers tried before (priors,
regional context, superpixels) broke.

On the six SEM micrographs of ``benchmarks/bench_classify.py`` (128
clusters, ``w = 0.5``; settings chosen on those images) it raises the mean
IoU over three forest seeds from 0.519 / 0.610 to 0.534 / 0.635 (rounds
1 / 2), most on the superalloy images, at about 0.1 s per 1024 x 1024 image
(docs/benchmarks.md, seventh round). On by default
(:attr:`~.model.PixelClassifier.cluster_smoothing`).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.clusters import feature_clusters, smooth_in_clusters
>>> rng = np.random.default_rng(0)
>>> f = np.zeros((64, 64, 3), np.float32); f[:, 32:] = 4.0
>>> f += rng.normal(0, 0.3, f.shape).astype(np.float32)
>>> lab = feature_clusters(f, n_clusters=2, step=1)
>>> bool((lab[:, :32] == lab[0, 0]).all()), bool(lab[0, 0] != lab[0, 63])
(True, True)
>>> p = np.where(np.arange(64)[None, :, None] < 32, [0.7, 0.3], [0.3, 0.7])
>>> p = np.broadcast_to(p, (64, 64, 2)).astype(np.float32).copy()
>>> p[5, 5] = [0.4, 0.6]                          # one wrong pixel
>>> int(smooth_in_clusters(p, lab, 0.5)[5, 5].argmax())
0
"""

from __future__ import annotations

import weakref

import numpy as np

from ..core.threads import one_blas_thread

__all__ = ["feature_clusters", "smooth_in_clusters", "cached_feature_clusters"]

#: Defaults (chosen on the benchmark's six micrographs, docs/benchmarks.md, seventh round).
N_CLUSTERS = 128
N_COMPONENTS = 16
N_SAMPLE = 10_000
STEP = 4
WEIGHT = 0.5


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, iters: int = 10) -> np.ndarray:
    """Lloyd's k-means on rows ``z (n, d)`` from ``k`` distinct random rows; centres ``(k, d)``."""
    c = z[rng.choice(len(z), k, replace=False)].copy()
    for _ in range(iters):
        lab = ((c * c).sum(1) - 2.0 * z @ c.T).argmin(1)
        cnt = np.bincount(lab, minlength=k)
        sums = np.stack([np.bincount(lab, z[:, j], minlength=k) for j in range(z.shape[1])], 1)
        full = cnt > 0
        c[full] = (sums[full] / cnt[full, None]).astype(c.dtype)
    return c


def feature_clusters(
    feats: np.ndarray,
    n_clusters: int = N_CLUSTERS,
    *,
    n_components: int = N_COMPONENTS,
    n_sample: int = N_SAMPLE,
    step: int = STEP,
    seed: int = 0,
) -> np.ndarray:
    """K-means clusters of the pixels in the principal components of their features.

    Parameters
    ----------
    feats : ndarray
        ``(H, W, F)`` pixel features (:func:`~.features.pixel_features`).
    n_clusters : int
        Number of clusters (fewer when the image has fewer sampled pixels).
    n_components : int
        Principal components of the standardized features used for the
        distances (fitted on the sample).
    n_sample : int
        Pixels drawn at random (seeded) to fit the components and the centres.
    step : int
        Pixels are assigned on every ``step``-th row and column and the
        labels repeated to ``step x step`` blocks (1/16 of the cost at 4;
        the smoothing mixes them with the forest's own probabilities, so
        boundaries stay the forest's; step 2 gave the same IoU on the
        benchmark within its noise at 2.5 x the time).
    seed : int
        Seed of the sample and the initial centres (the result is deterministic).

    Returns
    -------
    ndarray of int32
        ``(H, W)`` cluster index of every pixel, ``0 .. n_clusters - 1``.
    """
    f = np.asarray(feats)
    h, w, nf = f.shape
    step = max(1, int(step))
    g = f[::step, ::step]
    x = g.reshape(-1, nf)
    rng = np.random.default_rng(seed)
    n = min(int(n_sample), len(x))
    with one_blas_thread():
        sub = np.asarray(x[np.sort(rng.choice(len(x), n, replace=False))], np.float64)
        mu, sd = sub.mean(0), sub.std(0) + 1e-6
        zs = (sub - mu) / sd
        evals, evecs = np.linalg.eigh(zs.T @ zs)  # principal axes, largest last
        nc = max(1, min(int(n_components), nf))
        axes = evecs[:, ::-1][:, :nc]
        proj = (axes / sd[:, None]).astype(np.float32)
        off = (mu @ proj).astype(np.float32)
        z = (zs @ axes).astype(np.float32)
        c = _kmeans(z, max(1, min(int(n_clusters), n)), rng)
        c2 = (c * c).sum(1)
        lab = np.empty(len(x), np.int32)
        chunk = 65_536
        for i in range(0, len(x), chunk):
            zi = np.asarray(x[i : i + chunk], np.float32) @ proj - off
            lab[i : i + chunk] = (c2 - 2.0 * zi @ c.T).argmin(1)
    lab = lab.reshape(g.shape[:2])
    if step > 1:
        lab = np.repeat(np.repeat(lab, step, 0), step, 1)[:h, :w]
    return np.ascontiguousarray(lab)


_CACHE: list[tuple[weakref.ref, tuple, np.ndarray]] = []


def cached_feature_clusters(feats: np.ndarray, **kwargs) -> np.ndarray:
    """:func:`feature_clusters` of ``feats``, kept while that array lives (two at most).

    The dock re-trains after every stroke on the same cached feature array:
    its clusters are computed on the first stroke only.
    """
    key = tuple(sorted(kwargs.items()))
    for ref, k, lab in _CACHE:
        if ref() is feats and k == key:
            return lab
    lab = feature_clusters(feats, **kwargs)
    try:
        _CACHE.append((weakref.ref(feats), key, lab))
    except TypeError:  # not weak-referenceable (a view of a memmap is fine; this is not)
        return lab
    _CACHE[:] = [e for e in _CACHE if e[0]() is not None][-2:]
    return lab


def smooth_in_clusters(proba: np.ndarray, clusters: np.ndarray, weight: float = WEIGHT):
    """Mix each pixel's class probabilities with its cluster's mean.

    Parameters
    ----------
    proba : ndarray
        ``(H, W, K)`` class probabilities.
    clusters : ndarray of int
        ``(H, W)`` cluster indices (:func:`feature_clusters`).
    weight : float
        The pixel's own share ``w`` in ``w * p + (1 - w) * mean``: 1 keeps the
        probabilities, 0 gives every pixel its cluster's mean.

    Returns
    -------
    ndarray of float32
        ``(H, W, K)``, rows still summing to 1.
    """
    p = np.asarray(proba, np.float32)
    k = p.shape[-1]
    lab = np.asarray(clusters).ravel()
    if lab.size != p.size // k:
        raise ValueError(f"clusters {np.shape(clusters)} do not match probabilities {p.shape}")
    flat = p.reshape(-1, k)
    m = int(lab.max()) + 1
    # the means from every 2nd pixel of every 2nd row (clusters hold thousands of pixels)
    sub_l = np.asarray(clusters)[::2, ::2].ravel() if p.ndim == 3 else lab
    sub_p = p[::2, ::2].reshape(-1, k) if p.ndim == 3 else flat
    cnt = np.bincount(sub_l, minlength=m)
    mean = np.stack([np.bincount(sub_l, sub_p[:, j], minlength=m) for j in range(k)], -1)
    mean = mean / np.maximum(cnt, 1)[:, None]
    if (cnt == 0).any():  # a cluster only off the subgrid: its own full mean
        full = np.bincount(lab, minlength=m)
        for c in np.nonzero((cnt == 0) & (full > 0))[0]:
            mean[c] = flat[lab == c].mean(0)
    w = float(weight)
    mean = ((1.0 - w) * mean).astype(np.float32)
    out = mean[lab]
    out += w * flat
    return out.reshape(p.shape)
