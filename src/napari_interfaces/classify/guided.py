"""Edge-aware smoothing of class probabilities: the guided filter.

A pixel classifier labels each pixel from its own features, so its
probability maps are noisy inside regions and ragged along boundaries. The
guided filter (He, Sun & Tang 2013, *IEEE TPAMI* 35, 1397) smooths each
class's probability map ``p`` as a local linear function of the image ``I``
in every ``(2r + 1)²`` window,

``q = a * I + b``, with ``a = cov(I, p) / (var(I) + eps)`` and
``b = mean(p) - a * mean(I)``,

averaged over the windows that hold a pixel. Where the image is flat
(``var(I) << eps``) ``q`` is the window mean of ``p``; across an intensity
edge (``var(I) >> eps``) ``q`` follows the edge, so a boundary stays where
the image has it. This is the "cost-volume filtering" of Hosni et al. (2013,
*IEEE TPAMI* 35, 504) applied to a classifier's output; being a local filter
in the image plane with a small radius, it does not stop a label painted on a
few pixels from spreading to distant regions of its texture (the corrections
test of issue 24), which the regional spatial priors tried before did.

The coefficients are computed on a grid ``step`` times coarser and
upsampled (the "fast guided filter", He & Sun 2015, arXiv:1505.00996), so
the filter costs a few box filters of a quarter-size image.

The classifier's guide is the smoothed intensity of its finest feature scale
(``G_1 * I`` by default): the raw intensity would carry its noise into the
probabilities (on noisy synthetic blobs the raw guide lowered the accuracy,
0.971 -> 0.962, the smoothed one raised it to 0.982).

On the six SEM micrographs of ``benchmarks/bench_classify.py`` radius 6 px
(at step 2) and ``eps = 1e-3`` (intensities normalized to [0, 1]) raise the
default classifier's mean IoU over three seeds from 0.573 / 0.670 to
0.592 / 0.690 (rounds 1 / 2), the forest alone's from 0.535 / 0.639 to
0.557 / 0.656 (docs/benchmarks.md, tenth round (b); radius and ``eps`` were
screened on those images: 2-8 px and 1e-4-1e-1 all gained, by 0.004-0.021).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.guided import guided_smooth
>>> img = np.zeros((64, 64), np.float32); img[:, 32:] = 1.0   # an edge at column 32
>>> p = np.zeros((64, 64, 2), np.float32)
>>> p[:, :32, 0] = 0.7; p[:, :32, 1] = 0.3                   # left: class 0
>>> p[:, 32:, 0] = 0.3; p[:, 32:, 1] = 0.7                   # right: class 1
>>> p[10, 10] = [0.4, 0.6]                                   # one wrong pixel
>>> q = guided_smooth(p.copy(), img, radius=6)
>>> int(q[10, 10].argmax()), int(q[10, 31].argmax()), int(q[10, 32].argmax())
(0, 0, 1)
"""

from __future__ import annotations

import numpy as np

__all__ = ["guided_smooth", "RADIUS", "EPS", "STEP"]

#: Defaults (docs/benchmarks.md, tenth round (b)): window radius in pixels of the image,
#: regularization on [0, 1] intensities, and the coarser grid of the coefficients.
RADIUS = 6.0
EPS = 1e-3
STEP = 2


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size x size`` window of the first two axes (reflected at the borders).

    Along the rows as a sum of ``size`` shifted row blocks (contiguous adds: 4-10x faster
    than ``scipy.ndimage.uniform_filter1d`` along the first axis), along the columns with it.
    """
    from scipy import ndimage as ndi

    r = size // 2
    n = x.shape[0]
    padded = np.pad(x, ((r, r),) + ((0, 0),) * (x.ndim - 1), mode="symmetric")
    out = padded[:n].copy()
    for d in range(1, size):
        out += padded[d : d + n]
    out *= np.float32(1.0 / size)
    return ndi.uniform_filter1d(out, size, axis=1, mode="reflect")


def _up(x: np.ndarray, s: int, h: int, w: int) -> np.ndarray:
    """``x`` repeated ``s`` times along both axes, cropped to ``(h, w)``."""
    if s == 1:
        return x[:h, :w]
    return np.repeat(np.repeat(x, s, 0), s, 1)[:h, :w]


def guided_smooth(
    proba: np.ndarray,
    guide: np.ndarray,
    radius: float = RADIUS,
    eps: float = EPS,
    step: int = STEP,
) -> np.ndarray:
    """Class probabilities ``(H, W, K)`` smoothed along the edges of ``guide`` ``(H, W)``.

    Parameters
    ----------
    proba : ndarray
        ``(H, W, K)`` probabilities; overwritten with the result (float32).
    guide : ndarray
        ``(H, W)`` image, intensities about in [0, 1] (:func:`.features.normalize_image`).
    radius : float
        Window radius in pixels of ``guide`` (0: ``proba`` is returned unchanged).
    eps : float
        Regularization: intensity variances well below it are smoothed over,
        edges with variances well above it are kept.
    step : int
        The coefficients are computed on every ``step``-th pixel of every
        ``step``-th row and upsampled (1: the exact guided filter).

    Returns
    -------
    ndarray
        ``(H, W, K)`` float32, each pixel's values clipped to >= 1e-6 and
        summing to 1 (``proba`` itself when it was float32).
    """
    proba = np.asarray(proba)
    guide = np.ascontiguousarray(guide, np.float32)  # e.g. one column of a feature stack
    if proba.ndim != 3 or guide.shape != proba.shape[:2]:
        raise ValueError(f"guided_smooth: probabilities {proba.shape} and guide {guide.shape}")
    if radius <= 0:
        return proba
    h, w, k = proba.shape
    s = max(1, int(step))
    if min(h, w) < 4 * s:
        s = 1
    size = 2 * max(1, int(round(radius / s))) + 1
    g = np.ascontiguousarray(guide[::s, ::s])
    p = np.ascontiguousarray(proba[::s, ::s], np.float32)
    mean_i = _box(g, size)
    var_i = _box(g * g, size)
    var_i -= mean_i * mean_i
    var_i += np.float32(eps)
    mean_p = _box(p, size)
    a = _box(g[..., None] * p, size)
    a -= mean_i[..., None] * mean_p
    a /= var_i[..., None]
    b = mean_p
    b -= a * mean_i[..., None]
    a = _box(a, size)
    b = _box(b, size)
    out = proba if proba.dtype == np.float32 else np.empty((h, w, k), np.float32)
    ones = np.ones(k, np.float32)
    rows = 128 * s  # full-resolution rows in blocks (the upsampled a and b never held whole)
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        c = slice(y0 // s, (y1 + s - 1) // s)
        blk = out[y0:y1]
        np.multiply(_up(a[c], s, y1 - y0, w), guide[y0:y1, :, None], out=blk)
        blk += _up(b[c], s, y1 - y0, w)
        np.clip(blk, 1e-6, None, out=blk)
        blk /= (blk @ ones)[..., None]  # (a sum over a short last axis is 5x slower)
    return out
