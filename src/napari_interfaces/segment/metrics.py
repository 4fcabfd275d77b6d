"""Segmentation metrics: intersection over union (IoU) and F1 (Dice).

For each foreground class ``c``: ``IoU = TP / (TP + FP + FN)`` and
``F1 = 2 TP / (2 TP + FP + FN)``, pixel-wise. Over a data set the counts are
summed first ("micro" average over pixels), which is how the shipped model is
benchmarked; :func:`per_image_scores` gives the per-image values.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.segment.metrics import scores
>>> truth = np.array([[0, 1, 1, 0]])
>>> pred = np.array([[0, 1, 0, 0]])
>>> s = scores(pred, truth)
>>> round(s["iou"], 3), round(s["f1"], 3)
(0.5, 0.667)
"""

from __future__ import annotations

import numpy as np

__all__ = ["ConfusionCounter", "confusion", "f1_score", "iou_score", "per_image_scores", "scores"]


def confusion(pred, truth, n_classes: int = 2, ignore_index: int | None = None) -> np.ndarray:
    """``(n_classes, n_classes)`` confusion matrix, rows = truth, columns = prediction."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    truth = np.asarray(truth).ravel().astype(np.int64)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction and truth differ in size: {pred.size} vs {truth.size}")
    keep = (truth >= 0) & (truth < n_classes)
    if ignore_index is not None:
        keep &= truth != ignore_index
    pred = np.clip(pred[keep], 0, n_classes - 1)
    idx = truth[keep] * n_classes + pred
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _from_confusion(cm: np.ndarray) -> dict[str, float]:
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), 1.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 1.0)
    fg = slice(1, None)  # class 0 is background
    return {
        "iou": float(iou[fg].mean()),
        "f1": float(f1[fg].mean()),
        "iou_per_class": [float(v) for v in iou],
        "f1_per_class": [float(v) for v in f1],
        "pixel_accuracy": float(tp.sum() / max(cm.sum(), 1.0)),
    }


def scores(pred, truth, n_classes: int = 2) -> dict[str, float]:
    """IoU and F1 averaged over the foreground classes (1..n_classes-1).

    With no foreground in both prediction and truth a class scores 1.
    """
    return _from_confusion(confusion(pred, truth, n_classes))


def iou_score(pred, truth, n_classes: int = 2) -> float:
    """Mean foreground IoU (Jaccard index)."""
    return scores(pred, truth, n_classes)["iou"]


def f1_score(pred, truth, n_classes: int = 2) -> float:
    """Mean foreground F1 (Dice coefficient)."""
    return scores(pred, truth, n_classes)["f1"]


def per_image_scores(preds, truths, n_classes: int = 2) -> list[dict[str, float]]:
    """:func:`scores` for each (prediction, truth) pair."""
    return [scores(p, t, n_classes) for p, t in zip(preds, truths, strict=True)]


class ConfusionCounter:
    """Accumulate a confusion matrix over batches, then read the scores."""

    def __init__(self, n_classes: int = 2) -> None:
        self.n_classes = n_classes
        self.matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
        self.n = 0

    def update(self, pred, truth) -> None:
        pred, truth = np.asarray(pred), np.asarray(truth)
        self.matrix += confusion(pred, truth, self.n_classes)
        self.n += 1 if pred.ndim <= 2 else pred.shape[0]

    def scores(self) -> dict[str, float]:
        out = _from_confusion(self.matrix)
        out["n"] = self.n
        return out
