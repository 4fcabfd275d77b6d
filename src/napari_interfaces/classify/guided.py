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

A grey guide sees no edge between two textures of the same mean grey, so
by default (``PixelClassifier.edge_guide = "intensity+texture"``) a second
channel ``T`` joins it: the local standard deviation of the intensity at
16 px (the ``std@16`` feature), scaled by its 0.5-99.5 % range. The
regression in every window is then He et al.'s multi-channel ("colour")
one, ``q = a . (I, T) + b`` with ``a = (Sigma + eps U)^-1 cov((I, T), p)``
(``Sigma`` the channels' 2 x 2 covariance in the window), a closed-form
solve per coarse pixel. On the corrections test's mosaic (textures that
differ more by texture than by intensity) the new label's IoU goes from
0.89 with the grey guide to 0.92 (the forest alone's from 0.57 to 0.60;
without smoothing 0.94 and 0.61); on the six micrographs the mean IoU stays
where the grey guide had it (0.591 / 0.692 against 0.592 / 0.690, three
seeds; the forest alone 0.557 / 0.673 against 0.558 / 0.665 in that round's
harness), for about 0.008 s more per 1024 x 1024 image (0.035 s against
0.027 s). Texture maps at finer scales (std at 2-8 px, the gradient, the
features' principal components, three channels) kept more of the new label
but lost up to 0.013 mean IoU on the micrographs and up to 0.008 on the
blobs: a second regressor that varies within the window lets ``q`` follow
the classifier's noise (docs/benchmarks.md, tenth round (c)).

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

from ..core.errors import InputError

__all__ = ["guided_smooth", "texture_channel", "GUIDES", "RADIUS", "EPS", "STEP", "TEXTURE_SIGMA"]

#: Defaults (docs/benchmarks.md, tenth round (b)): window radius in pixels of the image,
#: regularization on [0, 1] intensities, and the coarser grid of the coefficients.
RADIUS = 6.0
EPS = 1e-3
STEP = 2
#: The guides a classifier may name (``PixelClassifier.edge_guide``): the smoothed intensity
#: alone, or with the local standard deviation at :data:`TEXTURE_SIGMA` as a second channel.
GUIDES = ("intensity", "intensity+texture")
#: Scale (pixels) of the texture channel: the ``std`` feature nearest to it.
TEXTURE_SIGMA = 16.0


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size x size`` window of the first two axes (reflected at the borders,
    as scipy's ``"reflect"``), float32.

    Both axes as sums of ``size`` shifted blocks: contiguous adds, 4-10x faster than
    ``scipy.ndimage.uniform_filter1d`` along the first axis.
    """
    r = size // 2
    n, m = x.shape[:2]
    if r < min(n, m):  # the borders reflected by hand (a copy less than np.pad)
        q = np.empty((n + 2 * r, m + 2 * r, *x.shape[2:]), np.float32)
        q[r : n + r, r : m + r] = x
        q[:r, r : m + r] = x[r - 1 :: -1]
        q[n + r :, r : m + r] = x[: n - r - 1 : -1]
        q[:, :r] = q[:, 2 * r - 1 : r - 1 : -1]
        q[:, m + r :] = q[:, m + r - 1 : m - 1 : -1]
    else:  # windows wider than the image: several reflections
        pad = ((r, r), (r, r)) + ((0, 0),) * (x.ndim - 2)
        q = np.pad(np.asarray(x, np.float32), pad, mode="symmetric")
    rows = q[:n].copy()
    for d in range(1, size):
        rows += q[d : d + n]
    out = rows[:, :m].copy()
    for d in range(1, size):
        out += rows[:, d : d + m]
    out *= np.float32(1.0 / (size * size))
    return out


def _up(x: np.ndarray, s: int, h: int, w: int) -> np.ndarray:
    """``x`` repeated ``s`` times along both axes, cropped to ``(h, w)``."""
    if s == 1:
        return x[:h, :w]
    return np.repeat(np.repeat(x, s, 0), s, 1)[:h, :w]


def texture_channel(names: list[str], guide: str) -> int | None:
    """Column of the texture channel among the feature ``names`` for ``guide`` (or None).

    The ``std@σ`` feature with ``σ`` nearest to :data:`TEXTURE_SIGMA` (in ratio).

    Raises
    ------
    InputError
        ``guide`` is not one of :data:`GUIDES`.
    """
    if guide not in GUIDES:
        raise InputError(f"edge guide: expected one of {GUIDES}, got {guide!r}")
    if guide == "intensity":
        return None
    cols = [
        (abs(np.log(float(n[4:]) / TEXTURE_SIGMA)), i)
        for i, n in enumerate(names)
        if n.startswith("std@")
    ]
    return min(cols)[1] if cols else None


def _coefficients2(g, texture, p, size, s, eps):
    """Box-filtered coefficients ``(a, a_t, b)`` of the two-channel regression (coarse grid).

    ``q = a * I + a_t * T + b`` per window, with ``(a, a_t)`` the closed-form 2 x 2 solve
    of the channels' covariance (+ ``eps``) against their covariances with ``p``. The
    texture map ``T`` is scaled by its 0.5-99.5 % range to about [0, 1] (so that ``eps``
    means the same for both channels); ``a_t`` and ``b`` are returned for the unscaled
    map. One 2-D image at a time (each stays in the cache: 1.5x faster than boxes of
    stacked channels).
    """
    box = _box
    lo, hi = np.percentile(texture[::8, ::8], (0.5, 99.5))
    # (a range below 1e-3 of the [0, 1] intensities is no texture: not blown up to [0, 1])
    lo, scale = np.float32(lo), np.float32(1.0 / max(float(hi - lo), 1e-3))
    t = np.asarray(texture[::s, ::s], np.float32) - lo
    t *= scale
    mi, mt = box(g, size), box(t, size)
    vii = box(g * g, size)
    vii -= mi * mi
    vii += np.float32(eps)
    vtt = box(t * t, size)
    vtt -= mt * mt
    vtt += np.float32(eps)
    vit = box(g * t, size)
    vit -= mi * mt
    inv = vii * vtt
    inv -= vit * vit
    np.divide(1.0, inv, out=inv)
    vii *= inv  # the inverse covariance
    vtt *= inv
    vit *= inv
    k = p.shape[-1]
    last = k > 1  # the last class from the others (below)
    a, at, b = [], [], []
    for j in range(k - 1 if last else k):
        pj = np.ascontiguousarray(p[..., j])
        mp = box(pj, size)
        ci = box(g * pj, size)
        ci -= mi * mp
        ct = box(t * pj, size)
        ct -= mt * mp
        aj = vtt * ci
        aj -= vit * ct
        tj = vii * ct
        tj -= vit * ci
        mp -= aj * mi
        mp -= tj * mt
        a.append(box(aj, size))
        tj = box(tj, size)
        tj *= scale  # for the unscaled map: a_t (T - lo) scale = (a_t scale) T - (a_t scale) lo
        at.append(tj)
        mp = box(mp, size)
        mp -= tj * lo
        b.append(mp)
    # the last class: the filter is linear and keeps a constant, so for probabilities
    # summing to 1 it is one minus the others (a third less work with three classes)
    if last:
        a.append(-sum(a))
        at.append(-sum(at))
        b.append(1.0 - sum(b))
    return np.stack(a, -1), np.stack(at, -1), np.stack(b, -1)


def guided_smooth(
    proba: np.ndarray,
    guide: np.ndarray,
    radius: float = RADIUS,
    eps: float = EPS,
    step: int = STEP,
    texture: np.ndarray | None = None,
) -> np.ndarray:
    """Class probabilities ``(H, W, K)`` smoothed along the edges of ``guide`` ``(H, W)``.

    Parameters
    ----------
    proba : ndarray
        ``(H, W, K)`` probabilities (summing to 1 per pixel); overwritten with the
        result (float32).
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
    texture : ndarray, optional
        ``(H, W)`` second guide channel, e.g. a local standard deviation
        (:func:`texture_channel`), scaled by its 0.5-99.5 % range: the
        regression in every window is then on both channels (He et al.'s
        colour guided filter, a 2 x 2 covariance per window), so a boundary
        also stays where the texture map has one.

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
    if texture is not None and np.shape(texture) != guide.shape:
        raise ValueError(f"guided_smooth: texture {np.shape(texture)} and guide {guide.shape}")
    if radius <= 0:
        return proba
    h, w, k = proba.shape
    s = max(1, int(step))
    if min(h, w) < 4 * s:
        s = 1
    size = 2 * max(1, int(round(radius / s))) + 1
    g = np.ascontiguousarray(guide[::s, ::s])
    p = np.ascontiguousarray(proba[::s, ::s], np.float32)
    if texture is None:
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
    else:
        a, at, b = _coefficients2(g, texture, p, size, s, eps)
    out = proba if proba.dtype == np.float32 else np.empty((h, w, k), np.float32)
    ones = np.ones(k, np.float32)
    rows = 128 * s  # full-resolution rows in blocks (the upsampled a and b never held whole)
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        c = slice(y0 // s, (y1 + s - 1) // s)
        blk = out[y0:y1]
        np.multiply(_up(a[c], s, y1 - y0, w), guide[y0:y1, :, None], out=blk)
        blk += _up(b[c], s, y1 - y0, w)
        if texture is not None:
            tex = np.ascontiguousarray(texture[y0:y1], np.float32)  # (a feature column)
            blk += _up(at[c], s, y1 - y0, w) * tex[..., None]
        np.clip(blk, 1e-6, None, out=blk)
        blk /= (blk @ ones)[..., None]  # (a sum over a short last axis is 5x slower)
    return out
