"""A simulated user who paints brush strokes: seeded random walks inside regions.

Used by the benchmark (``benchmarks/bench_classify.py``) and the tests, and
the same for every method compared: the strokes depend only on the truth
mask, the seed and the budget, never on a method's prediction (round 1) or
only on the prediction being scored (round 2, "paint where it is wrong").

Round 1 (:func:`initial_strokes`): for every class, a few random-walk strokes
of a round brush inside the class's largest regions (eroded by the brush, so
a stroke never crosses a boundary), under a pixel budget (default 1 %).

Round 2 (:func:`correction_strokes`): strokes with the true label inside the
largest connected regions where the prediction is wrong.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["random_walk_stroke", "initial_strokes", "correction_strokes"]


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r + r


def random_walk_stroke(
    allowed: np.ndarray, start: tuple[int, int], length: int, rng: np.random.Generator
) -> np.ndarray:
    """Centre-line pixels ``(n, 2)`` of a smooth random walk that stays in ``allowed``.

    The walk keeps a heading that turns by a few degrees per step; a step that
    would leave ``allowed`` turns the walker around instead.
    """
    h, w = allowed.shape
    y, x = float(start[0]), float(start[1])
    theta = rng.uniform(0, 2 * np.pi)
    pts = [(int(y), int(x))]
    for _ in range(int(length)):
        for _attempt in range(8):
            ny, nx = y + np.sin(theta), x + np.cos(theta)
            iy, ix = int(round(ny)), int(round(nx))
            if 0 <= iy < h and 0 <= ix < w and allowed[iy, ix]:
                y, x = ny, nx
                break
            theta += rng.uniform(0.5 * np.pi, 1.5 * np.pi)
        else:
            break
        theta += rng.normal(0.0, 0.25)
        p = (int(round(y)), int(round(x)))
        if p != pts[-1]:
            pts.append(p)
    return np.asarray(pts, np.int64)


def _paint(out: np.ndarray, pts: np.ndarray, radius: int, value: int, mask: np.ndarray) -> None:
    line = np.zeros(out.shape, bool)
    line[pts[:, 0], pts[:, 1]] = True
    if radius > 0:
        line = ndi.binary_dilation(line, _disk(radius))
    line &= mask
    out[line] = value


def _stroke_in(region: np.ndarray, radius: int, length: int, rng) -> np.ndarray | None:
    """A stroke's centre-line inside ``region`` (eroded by the brush when possible)."""
    inner = ndi.binary_erosion(region, _disk(radius)) if radius > 0 else region
    if not inner.any():
        inner = region
    ys, xs = np.nonzero(inner)
    if len(ys) == 0:
        return None
    i = rng.integers(len(ys))
    return random_walk_stroke(inner, (ys[i], xs[i]), length, rng)


def initial_strokes(
    truth: np.ndarray,
    *,
    seed: int = 0,
    strokes_per_class: int = 4,
    length: int = 120,
    radius: int = 2,
    budget: float = 0.015,
    min_region: float = 0.01,
    background: int | None = None,
) -> np.ndarray:
    """Round-1 scribbles: a few random-walk strokes inside every visually distinct region.

    A "visually distinct region" is a connected region of one class covering
    at least ``min_region`` of the image (e.g. the substrate and the top coat
    of a cross-section are two regions of one "background" class); every
    such region gets one stroke, and a class whose regions are all small
    (particles, pores, cracks) gets its strokes in its largest ones.

    Parameters
    ----------
    truth : ndarray of int
        ``(H, W)`` class image; every value (except ``background``) is a class.
    seed : int
        The only source of randomness.
    strokes_per_class : int
        Strokes per class at least (one per large region if there are more).
    length : int
        Steps of each random walk (pixels).
    radius : int
        Brush radius (pixels); thinner where a region is too thin for it.
    budget : float
        At most this fraction of the image is painted (strokes are shortened
        to fit).
    min_region : float
        Area fraction above which a connected region counts as its own region.
    background : int, optional
        A value of ``truth`` that is not a class (never painted).

    Returns
    -------
    ndarray of int32
        Scribbles: 0 = unpainted, ``truth`` value + 1 elsewhere (so class 0 of
        the truth becomes scribble 1).
    """
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth)
    out = np.zeros(truth.shape, np.int32)
    classes = [int(c) for c in np.unique(truth) if background is None or c != background]
    plan = []
    for c in classes:
        lab, n = ndi.label(truth == c)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        large = [int(i) for i in order if sizes[i] >= min_region * truth.size]
        picks = list(large)
        small = [int(i) for i in order[: max(1, 3 * strokes_per_class)]]
        while len(picks) < strokes_per_class:
            picks.append(small[len(picks) % len(small)] if not large else int(rng.choice(large)))
        plan += [(c, lab, i + 1) for i in picks]
    per_stroke = max(1, int(budget * truth.size) // max(1, len(plan)))
    for c, lab, i in plan:
        region = lab == i
        r = radius
        while r > 0 and not ndi.binary_erosion(region, _disk(r)).any():
            r -= 1
        pts = _stroke_in(region, r, length, rng)
        if pts is None:
            continue
        _paint_within(out, pts, r, c + 1, region, per_stroke)
    return out


def _paint_within(out, pts, radius, value, region, max_px) -> None:
    """Paint the stroke, shortened so that it adds at most ``max_px`` pixels."""
    keep = len(pts)
    while True:
        trial = out.copy()
        _paint(trial, pts[:keep], radius, value, region)
        added = int((trial != out).sum())
        if added <= max_px or keep <= 2:
            break
        keep = max(2, min(keep - 1, int(keep * max_px / added)))
    out[...] = trial


def correction_strokes(
    truth: np.ndarray,
    prediction: np.ndarray,
    scribbles: np.ndarray,
    *,
    seed: int = 1,
    n_regions: int = 6,
    length: int = 60,
    radius: int = 2,
    budget: float = 0.01,
) -> np.ndarray:
    """Round-2 scribbles: the round-1 ones plus strokes in the largest wrong regions.

    ``prediction`` uses the scribble values (truth + 1). Each of the
    ``n_regions`` largest connected regions where ``prediction != truth + 1``
    gets one stroke of its true class, within a total of ``budget`` extra
    pixels.
    """
    rng = np.random.default_rng(seed)
    target = np.asarray(truth).astype(np.int64) + 1
    out = np.asarray(scribbles).astype(np.int32).copy()
    wrong = np.asarray(prediction) != target
    max_px = int(budget * out.size)
    per_stroke = max(1, max_px // max(1, n_regions))
    regions = []
    for c in np.unique(target):
        lab, n = ndi.label(wrong & (target == c))
        if n:
            sizes = np.bincount(lab.ravel())[1:]
            for i in np.argsort(sizes)[::-1][:n_regions]:
                regions.append((int(sizes[i]), int(c), lab, int(i) + 1))
    regions.sort(key=lambda r: -r[0])
    for _size, c, lab, i in regions[:n_regions]:
        region = lab == i
        r = radius
        while r > 0 and not ndi.binary_erosion(region, _disk(r)).any():
            r -= 1
        pts = _stroke_in(region, r, length, rng)
        if pts is None:
            continue
        _paint_within(out, pts, r, c, region, per_stroke)
    return out
