"""Back to pixels: chip communities -> Labels image, community table, gallery.

Overlapping chips vote: the image is cut into the cells between all chip
edges, every chip adds one vote for its community to each cell it covers,
and a cell takes the label with most votes (ties: the chip whose centre is
nearest). Votes are
accumulated with 2-D difference arrays, so painting a 4096 x 4096 image costs
a few ``np.repeat`` calls. Optional boundary refinement re-assigns the pixels
of contested cells to the closest community in a per-pixel feature space
(local mean and local contrast), restricted to the communities voted there.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.chips import make_grid
>>> from napari_interfaces.cluster.paint import paint_labels
>>> g = make_grid((8, 8), chip=4, stride=4)
>>> paint_labels(np.array([1, 2, 3, 4]), g)[::4, ::4].tolist()
[[1, 2], [3, 4]]
"""

from __future__ import annotations

import numpy as np

from .chips import ChipGrid

__all__ = [
    "cell_votes",
    "paint_labels",
    "community_table",
    "chip_labels_from_image",
    "example_chips",
]


def _breaks(n: int, starts: np.ndarray, chip: int) -> np.ndarray:
    return np.unique(np.concatenate([[0, n], starts, starts + chip]))


def cell_votes(
    chip_labels: np.ndarray,
    grid: ChipGrid,
    n_labels: int | None = None,
    weights: np.ndarray | None = None,
):
    """Votes per cell: ``(votes (K+1, ny, nx), y_breaks, x_breaks)``; label 0 gets none."""
    lab = np.asarray(chip_labels, np.int64)
    if lab.shape != (grid.n_chips,):
        raise ValueError(f"expected {grid.n_chips} chip labels, got {lab.shape}")
    kmax = int(lab.max(initial=0)) if n_labels is None else int(n_labels)
    by = _breaks(grid.shape[0], grid.ys, grid.chip)
    bx = _breaks(grid.shape[1], grid.xs, grid.chip)
    r, c = grid.rc()
    y0 = np.searchsorted(by, grid.ys[r])
    y1 = np.searchsorted(by, grid.ys[r] + grid.chip)
    x0 = np.searchsorted(bx, grid.xs[c])
    x1 = np.searchsorted(bx, grid.xs[c] + grid.chip)
    w = np.ones(len(lab)) if weights is None else np.asarray(weights, np.float64)
    ok = lab > 0
    diff = np.zeros((kmax + 1, len(by), len(bx)))
    for yy, xx, s in ((y0, x0, 1), (y1, x0, -1), (y0, x1, -1), (y1, x1, 1)):
        np.add.at(diff, (lab[ok], yy[ok], xx[ok]), s * w[ok])
    votes = diff.cumsum(1).cumsum(2)[:, :-1, :-1]
    return votes, by, bx


def _expand(cells: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(cells, np.diff(by), axis=0), np.diff(bx), axis=1)


def paint_labels(
    chip_labels: np.ndarray,
    grid: ChipGrid,
    image: np.ndarray | None = None,
    refine: bool = False,
    dtype=np.int32,
) -> np.ndarray:
    """Labels image ``(H, W)`` from per-chip labels (``1..K``; 0 = unlabelled).

    Parameters
    ----------
    refine : bool
        Re-assign pixels in contested cells using ``image`` (needs it).
    """
    votes, by, bx = cell_votes(chip_labels, grid)
    # ties go to the chip whose centre is nearest to the cell centre (half a vote)
    lab = np.asarray(chip_labels, np.int64).reshape(grid.rows, grid.cols)
    cy = (by[:-1] + by[1:] - 1) / 2.0
    cx = (bx[:-1] + bx[1:] - 1) / 2.0
    ry = np.abs(cy[:, None] - (grid.ys + (grid.chip - 1) / 2.0)[None]).argmin(1)
    rx = np.abs(cx[:, None] - (grid.xs + (grid.chip - 1) / 2.0)[None]).argmin(1)
    near = lab[ry[:, None], rx[None, :]]
    tie = votes.copy()
    iy, ix = np.nonzero(near > 0)
    tie[near[iy, ix], iy, ix] += 0.5
    cells = tie.argmax(0).astype(dtype)
    covered = votes.sum(0) > 0
    if not covered.all() and covered.any():
        from scipy import ndimage as ndi

        _, (iy, ix) = ndi.distance_transform_edt(~covered, return_indices=True)
        cells = cells[iy, ix]
    labels = _expand(cells, by, bx)
    if refine and image is not None:
        labels = _refine(labels, votes, by, bx, image, grid)
    return labels


def _pixel_features(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage as ndi

    img = image if image.ndim == 3 else image[..., None]
    feats = []
    for c in range(img.shape[-1]):
        x = img[..., c].astype(np.float32)
        m = ndi.gaussian_filter(x, sigma)
        v = ndi.gaussian_filter(x * x, sigma) - m * m
        feats += [m, np.sqrt(np.maximum(v, 0))]
    return np.stack(feats, -1)


def _refine(labels, votes, by, bx, image, grid):
    cand = votes > 0  # (K+1, ny, nx)
    contested = cand[1:].sum(0) > 1
    if not contested.any():
        return labels
    f = _pixel_features(image, sigma=max(1.0, grid.stride / 8.0))
    d = f.shape[-1]
    k = votes.shape[0]
    sure = ~_expand(contested, by, bx)
    protos = np.full((k, d), np.nan)
    flat_l = labels[sure]
    flat_f = f[sure]
    for lab in np.unique(flat_l):
        protos[lab] = flat_f[flat_l == lab].mean(0)
    scale = flat_f.std(0) + 1e-6
    out = labels.copy()
    cy, cx = np.nonzero(contested)
    for y, x in zip(cy, cx):
        sl = (slice(by[y], by[y + 1]), slice(bx[x], bx[x + 1]))
        labs = np.nonzero(cand[:, y, x])[0]
        labs = labs[(labs > 0) & np.isfinite(protos[labs, 0])]
        if len(labs) < 2:
            continue
        px = f[sl].reshape(-1, d)
        dist = (((px[:, None, :] - protos[labs][None]) / scale) ** 2).sum(-1)
        out[sl] = labs[dist.argmin(1)].reshape(out[sl].shape)
    return out


def chip_labels_from_image(labels: np.ndarray, grid: ChipGrid) -> np.ndarray:
    """Majority label of every chip footprint in a Labels image (0 = none)."""
    lab = np.asarray(labels)
    if lab.shape[:2] != grid.shape:
        raise ValueError(f"labels shape {lab.shape} does not match the image {grid.shape}")
    lab = lab.astype(np.int64)
    k = int(lab.max(initial=0))
    out = np.zeros(grid.n_chips, np.int64)
    if k == 0:
        return out
    s = grid.chip
    step = max(1, s // 16)  # subsample the footprint: exact enough, fast
    sub = lab[:, :]
    for i, (y, x) in enumerate(grid.origins):
        patch = sub[y : y + s : step, x : x + s : step].ravel()
        patch = patch[patch > 0]
        if patch.size:
            out[i] = np.bincount(patch).argmax()
    return out


def example_chips(
    prepared: np.ndarray, chip_labels: np.ndarray, n: int = 6
) -> dict[int, list[int]]:
    """Per community, the ``n`` chips closest to its mean feature (representative first)."""
    out = {}
    for lab in np.unique(chip_labels):
        if lab <= 0:
            continue
        idx = np.nonzero(chip_labels == lab)[0]
        mu = prepared[idx].mean(0)
        d = ((prepared[idx] - mu) ** 2).sum(1)
        out[int(lab)] = idx[np.argsort(d, kind="stable")[:n]].tolist()
    return out


def community_table(
    labels: np.ndarray,
    chip_labels: np.ndarray,
    image: np.ndarray,
    prepared: np.ndarray | None = None,
    n_examples: int = 6,
) -> list[dict]:
    """One row per community: id, area fraction, chip count, mean intensity, representative chip.

    ``mean_intensity`` is per channel of the normalized image (list),
    measured on a regular subsample of at most about 1M pixels.
    """
    img = image if image.ndim == 3 else image[..., None]
    labels = np.asarray(labels)
    lab = labels.ravel()
    k = int(max(lab.max(initial=0), np.max(chip_labels, initial=0)))
    area = np.bincount(lab, minlength=k + 1)
    chips = np.bincount(np.asarray(chip_labels, np.int64), minlength=k + 1)
    # mean intensity on a regular subsample of at most ~1M pixels (exact for small images)
    step = max(1, int(np.sqrt(lab.size / 1_000_000)))
    sl = labels[::step, ::step].ravel()
    cnt = np.bincount(sl, minlength=k + 1)
    means = np.stack(
        [
            np.bincount(sl, weights=img[::step, ::step, c].ravel(), minlength=k + 1)
            for c in range(img.shape[-1])
        ],
        1,
    )
    means = means / np.maximum(cnt, 1)[:, None]
    ex = example_chips(prepared, chip_labels, n_examples) if prepared is not None else {}
    rows = []
    for i in range(1, k + 1):
        if area[i] == 0 and chips[i] == 0:
            continue
        rows.append(
            {
                "id": i,
                "area_fraction": round(float(area[i] / lab.size), 6),
                "chips": int(chips[i]),
                "mean_intensity": [round(float(v), 6) for v in means[i]],
                "representative_chip": int(ex[i][0]) if ex.get(i) else None,
                "example_chips": ex.get(i, []),
            }
        )
    return rows
