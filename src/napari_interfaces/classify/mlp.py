"""A small neural head on the pixel features: a one-hidden-layer perceptron (``kind="mlp"``).

Trained on the painted pixels with a class-balanced cross-entropy (the
forest's ``class_weight="balanced"``), Gaussian noise on the standardized
features, and an **entropy term on unpainted pixels of the same image**
(entropy minimization, Grandvalet & Bengio 2005): besides fitting the
strokes, the head is pushed to be confident on a grid sample of the whole
image, so its class boundaries move into the sparse parts of the feature
space instead of hugging the few, spatially concentrated strokes. A forest
cannot use the unpainted pixels; with them, on the six SEM micrographs of
``benchmarks/bench_classify.py`` the mean IoU over three seeds rises from
0.519 / 0.610 (forest, rounds 1 / 2; 0.534 / 0.635 with the default cluster
smoothing) to 0.581 / 0.654, and a new label painted on a few pixels of the
corrections test's texture mosaic spreads much further (IoU 0.61 -> 0.88).
The settings were chosen on those same images (docs/benchmarks.md, seventh
round). A re-train of a 1024 x 1024 image takes about the forest's time
(fit 0.35 s, prediction 0.25 s). Alone (``kind="mlp"``) it is opt-in: it
loses thin cracks, and on EBC1 032919 the round-2 strokes of the coating
layer taught it almost nothing (the entropy term pushes the unpainted pixels
around them, mostly background, to be confident, and the boundary moves
through the few painted pixels; docs/benchmarks.md, eighth round). The
opt-in ``kind="forest+mlp"`` (:mod:`.model`) mixes a head with entropy
weight 2, 150 steps and 32 hidden units 0.3 / 0.7 with the forest, which
memorizes the strokes: that fixes both, at about 0.15 s per 1024 x 1024
image more.

Plain NumPy with the gradients written out (no torch: a first version in
torch took twice as long, most of it torch's overhead per operation on these
small batches). Everything is seeded and the products run on one BLAS
thread, so a refit on the same rows gives the identical head (the
classifier is saved as its training set and refitted on load, never
pickled).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.mlp import fit_head
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (40, 3))].astype(np.float32)
>>> y = np.r_[np.full(40, 2), np.full(40, 5)]
>>> head = fit_head(x, y, x, seed=0)
>>> head.classes_.tolist(), head.predict_proba(np.array([[4.0, 4, 4]], np.float32)).argmax(-1)
([2, 5], array([1]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.threads import one_blas_thread

__all__ = ["HeadSettings", "MLPHead", "fit_head", "unlabeled_sample"]

#: the unpainted pixels of the entropy term: every ``UNLABELED_STEP``-th pixel of every
#: ``UNLABELED_STEP``-th row (16 384 rows for a 1024 x 1024 image) ...
UNLABELED_STEP = 8
#: ... and a coarser grid on images larger than 2048 x 2048 (the rows are saved with
#: the classifier: at most about 15 MB)
MAX_UNLABELED = 65_536


@dataclass(frozen=True)
class HeadSettings:
    """Training settings of :func:`fit_head` (chosen on the benchmark micrographs).

    Attributes
    ----------
    hidden : int
        Width of the hidden layer (ReLU).
    steps : int
        Optimizer steps (a fixed count: no validation split to stop on).
    batch : int
        Painted rows per step (all of them when fewer).
    unlabeled_batch : int
        Unpainted rows per step for the entropy term.
    lr, weight_decay : float
        AdamW with a one-cycle learning-rate schedule.
    noise : float
        Standard deviation of the Gaussian noise added to the standardized
        features of the painted rows.
    entropy : float
        Weight of the mean prediction entropy of the unpainted rows.
    warmup : float
        Fraction of the steps before the entropy term starts (the head first
        learns the strokes).
    """

    hidden: int = 64
    steps: int = 300
    batch: int = 1024
    unlabeled_batch: int = 1024
    lr: float = 1e-2
    weight_decay: float = 1e-3
    noise: float = 0.5
    entropy: float = 4.0
    warmup: float = 0.3


def unlabeled_sample(features: np.ndarray, step: int = UNLABELED_STEP) -> np.ndarray:
    """Rows of a regular grid sample of a ``(H, W, F)`` feature stack: ``(n, F)`` float32.

    Every ``step``-th pixel of every ``step``-th row (offset ``step // 4``), the
    step widened so that at most :data:`MAX_UNLABELED` rows are taken.
    """
    f = np.asarray(features)
    h, w = f.shape[:2]
    while -(-h // step) * -(-w // step) > MAX_UNLABELED:
        step += 1
    o = step // 4
    return np.ascontiguousarray(f[o::step, o::step].reshape(-1, f.shape[-1]), np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Softmax of the rows of ``z`` (2-D), in place.

    A few classes: the row maximum and sum column by column (the same values
    as ``max(-1)`` and ``sum(-1)``, whose inner loops over 2-7 elements cost
    several times more on these 1024-row batches).
    """
    k = z.shape[-1]
    if z.ndim != 2 or not 2 <= k <= 7:
        z -= z.max(-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(-1, keepdims=True)
        return z
    m = z[:, 0].copy()
    for j in range(1, k):
        np.maximum(m, z[:, j], out=m)
    z -= m[:, None]
    np.exp(z, out=z)
    t = z[:, 0].copy()
    for j in range(1, k):
        t += z[:, j]
    z /= t[:, None]
    return z


def _forward(x: np.ndarray, w1, b1, w2, b2) -> tuple[np.ndarray, np.ndarray]:
    """The head on rows ``x``: ``(hidden ReLU activations, class probabilities)``.

    In place after the two products (no temporaries of the batch's size).
    """
    h = x @ w1
    h += b1
    np.maximum(h, 0.0, out=h)
    z = h @ w2
    z += b2
    return h, _softmax(z)


class MLPHead:
    """A fitted head: ``predict_proba`` like a scikit-learn classifier.

    Attributes
    ----------
    classes_ : ndarray
        Class values (sorted), as painted.
    n_features_in_ : int
        Features per pixel.
    """

    def __init__(self, weights: tuple[np.ndarray, ...], mean, scale, classes: np.ndarray):
        self.w1, self.b1, self.w2, self.b2 = weights
        self.mean, self.scale = mean, scale
        self.classes_ = classes
        self.n_features_in_ = len(mean)
        # standardization folded into the first layer: x @ (w1 / scale) + (b1 - mean/scale @ w1)
        self._w1 = (self.w1 / self.scale[:, None]).astype(np.float32)
        self._b1 = (self.b1 - (self.mean / self.scale) @ self.w1).astype(np.float32)

    def predict_proba(self, x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of feature rows ``(n, F)``."""
        x = np.asarray(x, np.float32).reshape(-1, self.n_features_in_)
        out = np.empty((len(x), len(self.classes_)), np.float32)
        with one_blas_thread():
            for i in range(0, len(x), chunk):
                _, out[i : i + chunk] = _forward(
                    x[i : i + chunk], self._w1, self._b1, self.w2, self.b2
                )
        return out


def _one_cycle(step: int, total: int, max_lr: float, pct: float = 0.1):
    """Learning rate and Adam's beta1 of a one-cycle schedule (Smith 2018; PyTorch's defaults:
    cosine, from max_lr / 25 up to max_lr over ``pct`` of the steps, then down to
    max_lr / 25e4; beta1 from 0.95 down to 0.85 and back)."""
    up = float(pct * total) - 1
    lo, end = max_lr / 25.0, max_lr / 25.0e4
    if step <= up:
        t = step / up if up > 0 else 1.0
        c = (1 + np.cos(np.pi * t)) / 2  # 1 -> 0
        return max_lr + (lo - max_lr) * c, 0.85 + (0.95 - 0.85) * c
    t = (step - up) / max(1.0, total - 1 - up)
    c = (1 + np.cos(np.pi * t)) / 2
    return end + (max_lr - end) * c, 0.95 + (0.85 - 0.95) * c


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    unlabeled: np.ndarray | None = None,
    seed: int = 0,
    settings: HeadSettings | None = None,
) -> MLPHead:
    """Train a head on painted rows ``x (n, F)``, labels ``y (n,)``, and unpainted rows.

    Plain NumPy (the gradients written out, AdamW with a one-cycle schedule):
    300 steps of two 1024-row batches take about 0.2 s on one core, and no
    torch import is needed.

    Parameters
    ----------
    x, y : ndarray
        Features and class values of the painted pixels (at least two classes).
    unlabeled : ndarray, optional
        ``(m, F)`` features of unpainted pixels of the same image
        (:func:`unlabeled_sample`); None: no entropy term.
    seed : int
        Seeds the initial weights, the batches and the noise.
    settings : HeadSettings, optional
        Training settings (default :class:`HeadSettings`).

    Returns
    -------
    MLPHead
    """
    s = settings or HeadSettings()
    x = np.asarray(x, np.float32)
    classes, yi = np.unique(np.asarray(y).ravel(), return_inverse=True)
    k, nf = len(classes), x.shape[1]
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.maximum(scale, 1e-3 * max(float(scale.max()), 1e-6)).astype(np.float32)
    rng = np.random.default_rng(int(seed))
    params = []
    for fan_in, shape in ((nf, (nf, s.hidden)), (nf, (s.hidden,)), (s.hidden, (s.hidden, k)),
                          (s.hidden, (k,))):  # fmt: skip
        bound = 1.0 / np.sqrt(fan_in)  # PyTorch's default bounds
        params.append(rng.uniform(-bound, bound, shape).astype(np.float32))
    m1 = [np.zeros_like(q) for q in params]
    m2 = [np.zeros_like(q) for q in params]
    xs = (x - mean) / scale
    count = np.bincount(yi, minlength=k).astype(np.float32)
    class_w = (len(yi) / (k * count)).astype(np.float32)
    us = None
    if unlabeled is not None and len(unlabeled) and s.entropy > 0:
        us = (np.asarray(unlabeled, np.float32) - mean) / scale
    n = len(yi)
    beta2, eps = 0.999, 1e-8
    # the features' noise: rows of one pool drawn once (drawing 60 000 normals per step
    # cost more than the step's arithmetic)
    pool = s.noise * rng.standard_normal((8 * s.batch, nf), dtype=np.float32)
    with one_blas_thread():
        for step in range(s.steps):
            w1, b1, w2, b2 = params
            if n > s.batch:
                idx = rng.integers(0, n, s.batch)
                xb, yb = xs[idx], yi[idx]
            else:
                xb, yb = xs, yi
            if s.noise > 0:
                xb = xb + pool[rng.integers(0, len(pool), len(xb))]
            wb = class_w[yb]
            # class-balanced cross-entropy: d loss / d logits = w (p - onehot) / sum(w)
            ab, g = _forward(xb, w1, b1, w2, b2)
            g[np.arange(len(yb)), yb] -= 1.0
            g *= (wb / wb.sum())[:, None]
            ins, acts, grads_z = [xb], [ab], [g]
            if us is not None and step >= s.warmup * s.steps:
                ub = us[rng.integers(0, len(us), s.unlabeled_batch)]
                ins.append(ub)
                au, pu = _forward(ub, w1, b1, w2, b2)
                logp = np.log(np.maximum(pu, 1e-8))
                ent = -(pu * logp).sum(-1, keepdims=True)
                # + entropy * mean H: d H / d z = -p (log p + H)
                grads_z.append((-s.entropy / len(ub)) * pu * (logp + ent))
                acts.append(au)
            gw1 = np.zeros_like(w1)
            gb1 = np.zeros_like(b1)
            gw2 = np.zeros_like(w2)
            gb2 = np.zeros_like(b2)
            for xin, a, gz in zip(ins, acts, grads_z):
                gw2 += a.T @ gz
                gb2 += gz.sum(0)
                ga = (gz @ w2.T) * (a > 0)
                gw1 += xin.T @ ga
                gb1 += ga.sum(0)
            lr, beta1 = _one_cycle(step, s.steps, s.lr)
            t = step + 1
            for q, gq, mq, vq in zip(params, (gw1, gb1, gw2, gb2), m1, m2):  # AdamW
                q *= 1.0 - lr * s.weight_decay
                mq *= beta1
                mq += (1.0 - beta1) * gq
                vq *= beta2
                vq += (1.0 - beta2) * gq * gq
                denom = np.sqrt(vq / (1.0 - beta2**t)) + eps
                q -= (lr / (1.0 - beta1**t)) * mq / denom
    return MLPHead(tuple(params), mean, scale, classes)
