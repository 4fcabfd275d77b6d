"""Stroke propagation: a random walker with the forest's probabilities as its prior.

The forest labels each pixel from its own features; it cannot know that a
region bounded by edges, with a stroke in it, belongs to that stroke's
class. This step adds that (Grady 2006, *Random walks for image
segmentation*, with the prior model of Grady 2005): on a coarse grid
(about ``grid`` nodes per side) it solves, for every class ``k``,

``(L + diag(gamma + lambda * s)) x_k = gamma * p_k + lambda * s * y_k``

where ``L`` is the graph Laplacian of the 4-connected grid, ``p_k`` the
forest's probability, ``s`` the painted fraction of a node and ``y_k`` its
painted class fraction. An edge's weight is
``exp(-beta |dI|^2 / <|dI|^2> - beta_f |dz|^2 / <|dz|^2>)``: ``I`` the
smoothed intensity, ``z`` the first principal components of the pixel
features, each difference relative to its mean over the image. Strokes
spread inside regions without intensity or feature edges (diffusion length
about ``1 / sqrt(gamma)`` nodes); where no stroke reaches, the forest's
probabilities are kept, so a label painted on a few pixels still spreads to
every region with its texture. The change ``x - p`` (bilinearly upsampled)
is added to the forest's full-resolution probabilities, so thin structures
keep the forest's exact boundaries.

The feature term matters: with the intensity term alone, strokes of one
class leak across texture boundaries that are no intensity edges (the
corrections test's mosaic: a new label's IoU 0.62 -> 0.41). Both terms are
relative to their image mean, so the walk spreads in regions smoother than
the image's average (a coating layer next to a porous one) and hardly at
all in an image that is textured everywhere (there the forest's labels
stay). Opt-in (``propagate``): on the micrographs of
``benchmarks/bench_classify.py`` +0.02 mean IoU at 0.3-0.4 s more per
1024 x 1024 image (docs/benchmarks.md, fifth and sixth rounds).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.propagate import propagate_strokes
>>> img = np.zeros((64, 64), np.float32); img[:, 32:] = 1.0
>>> p = np.full((64, 64, 2), 0.5, np.float32)   # an undecided forest
>>> s = np.zeros((64, 64), int); s[30:34, 5:9] = 1; s[30:34, 50:54] = 2
>>> q = propagate_strokes(p, img, s, np.array([1, 2]), img[..., None])
>>> int(q[10, 10].argmax()), int(q[60, 60].argmax())
(0, 1)
"""

from __future__ import annotations

import numpy as np

from ..core.threads import one_blas_thread

__all__ = ["propagate_strokes"]


def _pool(x: np.ndarray, d: int) -> np.ndarray:
    """``d x d`` block means of ``x (H, W, ...)`` (a ragged last row/column dropped)."""
    if d == 1:
        return np.asarray(x, np.float32)
    h, w = x.shape[0] // d * d, x.shape[1] // d * d
    x = np.asarray(x[:h, :w], np.float32)
    return x.reshape(h // d, d, w // d, d, *x.shape[2:]).mean(axis=(1, 3))


def _principal(f: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` principal components of standardized rows ``f (N, F)``."""
    f = f - f.mean(0)
    f /= f.std(0) + 1e-6
    sample = f[:: max(1, len(f) // 20000)]
    with one_blas_thread():
        _, vec = np.linalg.eigh(sample.T @ sample)  # ascending eigenvalues
        return f @ vec[:, ::-1][:, : min(n, vec.shape[1])]


def _painted_fractions(scribbles: np.ndarray, classes: np.ndarray, d: int) -> np.ndarray:
    """``(hh, ww, K)`` painted fraction of each class in each ``d x d`` block.

    The same float32 values as :func:`_pool` of the class masks (an exact
    integer count divided by ``d * d``), without the ``(H, W, K)`` float stack.
    """
    s = np.asarray(scribbles)
    h, w = s.shape[0] // d * d, s.shape[1] // d * d
    s = s[:h, :w]
    out = np.empty((h // d, w // d, len(classes)), np.float32)
    for j, c in enumerate(classes):
        count = (s == c).reshape(h // d, d, w // d, d).sum(axis=(1, 3), dtype=np.int32)
        np.true_divide(count.astype(np.float32), d * d, out=out[..., j])
    return out


def _edge_energy(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared differences of ``z (H, W[, n])`` to the right and down, over their mean."""
    z = z if z.ndim == 3 else z[..., None]
    ex = ((z[:, 1:] - z[:, :-1]) ** 2).sum(-1)
    ey = ((z[1:, :] - z[:-1, :]) ** 2).sum(-1)
    mean = (ex.sum() + ey.sum()) / max(1, ex.size + ey.size) + 1e-12
    return ex / mean, ey / mean


def propagate_strokes(
    proba: np.ndarray,
    image: np.ndarray,
    scribbles: np.ndarray,
    classes: np.ndarray,
    features: np.ndarray,
    *,
    grid: int = 256,
    beta: float = 4.0,
    beta_f: float = 32.0,
    gamma: float = 3e-4,
    n_components: int = 8,
    seed_weight: float = 1e3,
) -> np.ndarray:
    """The forest's probabilities with the strokes spread inside edge-bounded regions.

    Parameters
    ----------
    proba : ndarray
        ``(H, W, K)`` the forest's class probabilities (columns = ``classes``).
    image : ndarray
        ``(H, W)`` the normalized grey image.
    scribbles : ndarray of int
        ``(H, W)``; 0 = unpainted, else a value of ``classes``.
    classes : ndarray
        ``(K,)`` the class values of ``proba``'s columns.
    features : ndarray
        ``(H, W, F)`` the pixel features (their principal components weight
        the edges).
    grid, beta, beta_f, gamma, n_components, seed_weight
        See the module docstring. The defaults were chosen on the six
        micrographs of ``benchmarks/bench_classify.py`` together with the
        corrections test's mosaic (docs/benchmarks.md, fifth round).

    Returns
    -------
    ndarray
        ``(H, W, K)`` float32 scores (argmax = the label; not normalized).
    """
    import scipy.sparse as sp
    from scipy import ndimage as ndi
    from scipy.sparse.linalg import splu

    from ._resample import _upsample

    h, w, k = proba.shape
    d = max(1, int(round(max(h, w) / float(grid))))
    hh, ww = h // d, w // d
    if hh < 4 or ww < 4 or k < 2:
        return proba
    g = _pool(ndi.gaussian_filter(np.asarray(image, np.float32), 1.0), d)
    pd = _pool(proba, d)
    painted = _painted_fractions(scribbles, classes, d)  # (hh, ww, k) fractions
    frac = painted.sum(-1)
    target = painted / np.maximum(frac, 1e-9)[..., None]
    ex, ey = _edge_energy(g)
    ex *= beta
    ey *= beta
    if beta_f and n_components:
        # the block centres' features (the features are smooth at the grid's scale; a
        # block mean would read the whole (H, W, F) stack)
        c = d // 2
        f = np.asarray(features[c : hh * d : d, c : ww * d : d], np.float32).reshape(hh * ww, -1)
        z = _principal(f, int(n_components)).reshape(hh, ww, -1)
        fx, fy = _edge_energy(z)
        ex += beta_f * fx
        ey += beta_f * fy
    wx, wy = np.exp(-ex), np.exp(-ey)  # (hh, ww-1), (hh-1, ww)
    n = hh * ww
    right = np.zeros((hh, ww), np.float64)
    right[:, :-1] = wx
    down = np.zeros((hh, ww), np.float64)
    down[:-1] = wy
    deg = right.copy()
    deg[:, 1:] += wx
    deg += down
    deg[1:] += wy
    lam = seed_weight * frac.ravel()
    diag = deg.ravel() + gamma + lam
    r, dn = right.ravel()[:-1], down.ravel()[:-ww]
    m = sp.diags([diag, -r, -r, -dn, -dn], [0, 1, -1, ww, -ww], shape=(n, n), format="csc")
    rhs = gamma * pd.reshape(n, k).astype(np.float64) + lam[:, None] * target.reshape(n, k)
    # symmetric positive definite: no pivoting, a symmetric fill-reducing ordering
    lu = splu(
        m, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    x = lu.solve(rhs).reshape(hh, ww, k)
    delta = (x - pd).astype(np.float32)
    out = np.array(proba, np.float32, copy=True)
    if d == 1:
        out += delta
    else:
        up = _upsample([delta[..., j] for j in range(k)], (hh * d, ww * d), d)
        out[: hh * d, : ww * d] += up
    return out
