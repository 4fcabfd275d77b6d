"""A small torch head on the pixel features: a one-hidden-layer perceptron (``kind="mlp"``).

Trained on the painted pixels with a class-balanced cross-entropy (the
forest's ``class_weight="balanced"``), Gaussian noise on the standardized
features, and an **entropy term on unpainted pixels of the same image**
(entropy minimization, Grandvalet & Bengio 2005): besides fitting the
strokes, the head is pushed to be confident on a grid sample of the whole
image, so its class boundaries move into the sparse parts of the feature
space instead of hugging the few, spatially concentrated strokes. A forest
cannot use the unpainted pixels; with them, on the six SEM micrographs of
``benchmarks/bench_classify.py`` the mean IoU over three seeds rises from
0.519 / 0.610 (forest, rounds 1 / 2) to 0.583 / 0.664, and a new label painted
on a few pixels of the corrections test's texture mosaic spreads much further
(IoU 0.62 -> 0.86). The settings were chosen on those same images
(docs/benchmarks.md, seventh round). It costs about 0.5 s more than the
forest per re-train of a 1024 x 1024 image (300 optimizer steps on one
thread), so it is opt-in.

Everything is seeded and runs on one torch thread, so a refit on the same
rows gives the identical head (the classifier is saved as its training set
and refitted on load, never pickled). torch is imported lazily.

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

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

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


@contextmanager
def _one_thread():
    """torch on one thread (deterministic, no waiting on busy cores); restored afterwards."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield torch
    finally:
        torch.set_num_threads(prev)


class MLPHead:
    """A fitted head: ``predict_proba`` like a scikit-learn classifier.

    Attributes
    ----------
    classes_ : ndarray
        Class values (sorted), as painted.
    n_features_in_ : int
        Features per pixel.
    """

    def __init__(self, net: Any, mean: np.ndarray, scale: np.ndarray, classes: np.ndarray):
        self.net, self.mean, self.scale = net, mean, scale
        self.classes_ = classes
        self.n_features_in_ = len(mean)

    def predict_proba(self, x: np.ndarray, chunk: int = 131_072) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of feature rows ``(n, F)``."""
        x = np.asarray(x, np.float32).reshape(-1, self.n_features_in_)
        out = np.empty((len(x), len(self.classes_)), np.float32)
        with _one_thread() as torch, torch.inference_mode():
            for i in range(0, len(x), chunk):
                xt = torch.from_numpy((x[i : i + chunk] - self.mean) / self.scale)
                out[i : i + chunk] = torch.softmax(self.net(xt), -1).numpy()
        return out


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    unlabeled: np.ndarray | None = None,
    seed: int = 0,
    settings: HeadSettings | None = None,
) -> MLPHead:
    """Train a head on painted rows ``x (n, F)``, labels ``y (n,)``, and unpainted rows.

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
    k = len(classes)
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.maximum(scale, 1e-3 * max(float(scale.max()), 1e-6)).astype(np.float32)
    with _one_thread() as torch:
        g = torch.Generator().manual_seed(int(seed))
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], s.hidden), torch.nn.ReLU(), torch.nn.Linear(s.hidden, k)
        )
        with torch.no_grad():  # seeded initialization (PyTorch's default bounds)
            for layer in (net[0], net[2]):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=g)
                layer.bias.uniform_(-bound, bound, generator=g)
        xt = torch.from_numpy((x - mean) / scale)
        yt = torch.from_numpy(yi.astype(np.int64))
        count = np.bincount(yi, minlength=k).astype(np.float32)
        weight = torch.from_numpy(len(yi) / (k * count))
        ut = None
        if unlabeled is not None and len(unlabeled) and s.entropy > 0:
            ut = torch.from_numpy((np.asarray(unlabeled, np.float32) - mean) / scale)
        opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=s.lr, total_steps=s.steps, pct_start=0.1
        )
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        n = len(yi)
        for step in range(s.steps):
            if n > s.batch:
                idx = torch.randint(0, n, (s.batch,), generator=g)
                xb, yb = xt[idx], yt[idx]
            else:
                xb, yb = xt, yt
            if s.noise > 0:
                xb = xb + s.noise * torch.randn(xb.shape, generator=g)
            loss = loss_fn(net(xb), yb)
            if ut is not None and step >= s.warmup * s.steps:
                ub = ut[torch.randint(0, len(ut), (s.unlabeled_batch,), generator=g)]
                p = torch.softmax(net(ub), -1)
                loss = loss - s.entropy * (p * torch.log(p.clamp_min(1e-8))).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
    return MLPHead(net, mean, scale, classes)
