"""Accuracy metrics of phase segmentations against ground truth.

* :func:`edge_fscore`: boundary voxels (a face neighbour with another phase)
  of the prediction vs the truth, matched with a tolerance of ``tol`` voxels
  (Chebyshev, i.e. a 3x3x3 neighbourhood for ``tol=1``).
* :func:`phase_iou`: predicted phases matched one-to-one to true phases by
  the Hungarian algorithm on IoU; mean IoU over the true phases (an
  unmatched true phase scores 0).
* :func:`position_error`: mean absolute true signed distance (nm) at the
  centres of the predicted interface faces (faces between voxels of two
  different predicted phases): how far the predicted interface lies from the
  true one.
* :func:`profile_rmse`: RMSE (at.%) of a proxigram against the true profile
  over bins within ``window`` nm of the interface.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.geometry import Grid

__all__ = [
    "boundary",
    "match_clusters",
    "particle_metrics",
    "edge_fscore",
    "match_phases",
    "phase_iou",
    "position_error",
    "profile_rmse",
]


def boundary(labels: np.ndarray) -> np.ndarray:
    """Voxels with a face neighbour of a different (non-zero) label."""
    b = np.zeros(labels.shape, bool)
    for ax in range(labels.ndim):
        a = np.moveaxis(labels, ax, 0)
        bb = np.moveaxis(b, ax, 0)
        diff = (a[:-1] != a[1:]) & (a[:-1] > 0) & (a[1:] > 0)
        bb[:-1] |= diff
        bb[1:] |= diff
    return b


def edge_fscore(pred: np.ndarray, true: np.ndarray, tol: int = 1) -> dict[str, float]:
    """Precision, recall and F of predicted phase boundaries (``tol`` voxels)."""
    from scipy import ndimage

    bp, bt = boundary(pred), boundary(true)
    if not bt.any() and not bp.any():
        return {"precision": 1.0, "recall": 1.0, "f": 1.0}
    st = np.ones((3,) * pred.ndim, bool)
    dt = ndimage.binary_dilation(bt, st, iterations=tol) if tol else bt
    dp = ndimage.binary_dilation(bp, st, iterations=tol) if tol else bp
    p = float((bp & dt).sum() / bp.sum()) if bp.any() else 0.0
    r = float((bt & dp).sum() / bt.sum()) if bt.any() else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f": f}


def match_phases(pred: np.ndarray, true: np.ndarray) -> tuple[dict[int, int], np.ndarray]:
    """Hungarian matching on IoU: ``{true_label: pred_label}`` and the IoU matrix."""
    from scipy.optimize import linear_sum_assignment

    m = true > 0
    t = true[m].astype(np.int64)
    p = pred[m].astype(np.int64)
    nt, npd = int(t.max()) + 1, int(max(p.max(), 0)) + 1
    inter = np.bincount(t * npd + p, minlength=nt * npd).reshape(nt, npd)[1:, 1:].astype(float)
    st = inter.sum(axis=1) + 0.0
    tsz = np.bincount(t, minlength=nt)[1:].astype(float)
    psz = np.bincount(p, minlength=npd)[1:].astype(float)
    union = tsz[:, None] + psz[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    del st
    if iou.size == 0:
        return {}, iou
    r, c = linear_sum_assignment(-iou)
    return {int(i) + 1: int(j) + 1 for i, j in zip(r, c) if iou[i, j] > 0}, iou


def phase_iou(pred: np.ndarray, true: np.ndarray) -> dict:
    """Mean IoU over the true phases after Hungarian matching (``mean``, ``per_phase``)."""
    mapping, iou = match_phases(pred, true)
    present = [k for k in range(1, iou.shape[0] + 1) if (true == k).any()]
    per = {k: (float(iou[k - 1, mapping[k] - 1]) if k in mapping else 0.0) for k in present}
    return {
        "mean": float(np.mean(list(per.values()))) if per else 0.0,
        "per_phase": per,
        "mapping": mapping,
    }


def interface_faces(labels: np.ndarray, grid: Grid) -> np.ndarray:
    """Centres (x, y, z nm) of faces between voxels of two different phases."""
    o = np.asarray(grid.origin, float)
    s = np.asarray(grid.spacing, float)
    pts = []
    for ax in range(3):
        a = np.moveaxis(labels, ax, 0)
        diff = (a[:-1] != a[1:]) & (a[:-1] > 0) & (a[1:] > 0)
        idx = np.argwhere(diff).astype(float)
        if not len(idx):
            continue
        idx[:, 0] += 0.5
        # back to zyx order
        order = [0, 1, 2]
        order.remove(ax)
        zyx = np.empty_like(idx)
        zyx[:, ax] = idx[:, 0]
        zyx[:, order[0]] = idx[:, 1]
        zyx[:, order[1]] = idx[:, 2]
        pts.append(o + zyx * s)
    if not pts:
        return np.zeros((0, 3))
    return np.concatenate(pts)[:, ::-1]


def position_error(
    pred: np.ndarray, grid: Grid, true_sdf: Callable[[np.ndarray], np.ndarray]
) -> float:
    """Mean |true signed distance| (nm) at the predicted interface faces (NaN if none)."""
    xyz = interface_faces(pred, grid)
    if not len(xyz):
        return float("nan")
    return float(np.mean(np.abs(true_sdf(xyz))))


def profile_rmse(
    distance_nm: np.ndarray,
    at_pct: np.ndarray,
    elements: list[str],
    true_profile: Callable[[np.ndarray], dict[str, np.ndarray]],
    window: float = 3.0,
    n_atoms: np.ndarray | None = None,
    min_atoms: int = 100,
) -> float:
    """RMSE (at.%) over elements and bins with ``|d| <= window``.

    Bins with fewer than ``min_atoms`` atoms (e.g. the last bins deep inside
    a small precipitate; counting error above ~5 at.%) are left out.
    """
    sel = np.abs(distance_nm) <= window
    if n_atoms is not None:
        sel &= n_atoms >= min_atoms
    if not sel.any():
        return float("nan")
    tp = true_profile(distance_nm[sel])
    diffs = [at_pct[sel, i] - tp[e] for i, e in enumerate(elements) if e in tp]
    return float(np.sqrt(np.nanmean(np.square(np.concatenate(diffs)))))


def evaluate_synthetic(synth, result, atoms, bin_nm: float = 0.25, window: float = 3.0) -> dict:
    """All metrics of one :class:`InterfaceResult` against a ``SyntheticAPT``.

    ``synth`` provides ``phase_volume(grid, shape)`` (0 = matrix, 1 =
    precipitate), ``signed_distance(xyz)`` (> 0 inside the precipitate) and
    ``true_profile(d)`` (element -> at.%). The proxigram is taken about the
    predicted phase matched to the true precipitate, positive inside it, as
    the true profile is.
    """
    from .proxigram import proxigram

    truth01, _ = synth.phase_volume(result.grid, result.labels.shape)
    mask = result.labels > 0
    true = np.where(mask, truth01.astype(np.int32) + 1, 0)
    iou = phase_iou(result.labels, true)
    out = {
        "edge_f": edge_fscore(result.labels, true)["f"],
        "iou": iou["mean"],
        "n_phases": result.n_phases,
        "position_nm": float("nan"),
        "rmse_at%": float("nan"),
    }
    if result.n_phases > 1 and 2 in iou["mapping"]:
        out["position_nm"] = position_error(result.labels, result.grid, synth.signed_distance)
        prox = proxigram(
            result.labels,
            result.grid,
            atoms,
            phase=iou["mapping"][2],
            bin_nm=bin_nm,
            range_nm=(-window - 1, window + 1),
        )
        out["rmse_at%"] = profile_rmse(
            prox.distance_nm, prox.at_pct, prox.elements, synth.true_profile, window, prox.total
        )
        out["proxigram"] = prox
    return out


def match_clusters(labels: np.ndarray, true_ids: np.ndarray, min_fraction: float = 0.5) -> dict:
    """Match found clusters to true particles through the ions they share.

    A found cluster matches the true particle that most of its truth-labelled
    ions belong to; a true particle counts as found when a matched cluster
    holds at least ``min_fraction`` of its ions (one cluster per particle: the
    one holding most). Returns ``found`` (true id -> cluster), ``missed`` (true
    ids), ``spurious`` (clusters without true ions or matched to an already
    found particle) and ``n_true``/``n_found``.
    """
    labels = np.asarray(labels).astype(np.int64)
    t = np.asarray(true_ids).astype(np.int64)
    n_true, n_lab = int(t.max(initial=0)), int(labels.max(initial=0))
    sel = (labels > 0) & (t > 0)
    inter = np.bincount(
        labels[sel] * (n_true + 1) + t[sel], minlength=(n_lab + 1) * (n_true + 1)
    ).reshape(n_lab + 1, n_true + 1)
    tsize = np.bincount(t[t > 0], minlength=n_true + 1)
    found: dict[int, int] = {}
    for tid in range(1, n_true + 1):
        col = inter[:, tid]
        c = int(np.argmax(col))
        if (
            c > 0
            and col[c] >= min_fraction * max(tsize[tid], 1)
            and int(np.argmax(inter[c])) == tid
        ):
            found[tid] = c
    used = set(found.values())
    spurious = [c for c in range(1, n_lab + 1) if c not in used]
    return {
        "found": found,
        "missed": [tid for tid in range(1, n_true + 1) if tid not in found and tsize[tid] > 0],
        "spurious": spurious,
        "n_true": int((tsize[1:] > 0).sum()),
        "n_found": len(found),
    }


def particle_metrics(synth, result, min_radius_nm: float = 1.5, min_found: float = 0.5) -> dict:
    """Per-precipitate detection of a phase segmentation of a
    :func:`~napari_interfaces.apt.synthetic.synthesize_particles` specimen.

    The true particle of each voxel centre is the sphere containing it; the
    predicted precipitate phase is the one matched (Hungarian on IoU) to the
    true precipitate phase. A particle is **found** when at least
    ``min_found`` of its voxels carry that phase. Returns ``n`` / ``found``
    (all particles), ``n_big`` / ``found_big`` (radius >= ``min_radius_nm``),
    ``iou`` (mean over the two phases, as :func:`evaluate_synthetic`),
    ``iou_precipitate`` (the precipitate phase alone) and the per-particle
    found fractions.
    """
    grid, shape = result.grid, result.labels.shape
    centres_zyx = synth._centres(grid, shape)
    c = np.asarray(synth.params["centres_nm"], float).reshape(-1, 3)
    if "radii_nm" in synth.params:
        r = np.asarray(synth.params["radii_nm"], float).reshape(-1)
    else:  # synthesize("isolated"): one radius for all spheres
        r = np.full(len(c), float(synth.params["radius_nm"]))
    from .synthetic import _sphere_distance

    # the particle (1-based) each voxel centre lies in, 0 outside every sphere
    _, pid = _sphere_distance({"centres_nm": c, "radii_nm": r}, centres_zyx, ids=True)
    pid = pid.reshape(shape)
    mask = result.labels > 0
    true = np.where(mask, (pid > 0).astype(np.int32) + 1, 0)
    iou = phase_iou(result.labels, true)
    ppt = iou["mapping"].get(2)
    pred = (
        (result.labels == ppt)
        if ppt is not None and result.n_phases > 1
        else np.zeros(shape, bool)
    )
    n_p = len(c)
    tot = np.bincount(pid[mask].ravel(), minlength=n_p + 1)[1:]
    hit = np.bincount(pid[mask & pred].ravel(), minlength=n_p + 1)[1:]
    frac = np.where(tot > 0, hit / np.maximum(tot, 1), np.nan)
    present = tot > 0
    big = present & (r >= min_radius_nm)
    return {
        "n": int(present.sum()),
        "found": int((frac[present] >= min_found).sum()),
        "n_big": int(big.sum()),
        "found_big": int((frac[big] >= min_found).sum()),
        "iou": iou["mean"],
        "iou_precipitate": float(iou["per_phase"].get(2, 0.0)),
        "found_fraction": frac.tolist(),
    }
