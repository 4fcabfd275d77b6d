"""Edges -> closed regions -> phases merged by composition; the phase table.

* :func:`phases_from_edges`: regions are the connected parts of the specimen
  where the edge probability is low (seeds), grown over the edge ridges by a
  watershed on the edge probability, so every specimen voxel gets a region.
* :func:`merge_by_composition`: regions (from any method) whose mean
  compositions do not differ significantly are merged into one phase,
  adjacent or not (two precipitates of the same phase get one label). A
  difference counts when it exceeds ``min_contrast`` (atomic fraction, any
  element) *and* is statistically significant given the atom counts.
  Data of a single phase thus ends with one label: "no interface found".
* :func:`refine_boundaries`: voxels within a few voxels of a phase boundary
  are reassigned to the neighbouring phase whose mean composition is closest
  to the voxel's (smoothed) composition, which places the boundary at the
  mid-composition crossing, with sub-voxel bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress
from .volume import NO_INTERFACE, InterfaceResult

__all__ = [
    "NO_INTERFACE",
    "adjacent_pairs",
    "make_result",
    "merge_by_composition",
    "phase_table",
    "phases_from_edges",
    "refine_boundaries",
    "select_channels",
]


def select_channels(
    comp: np.ndarray,
    mask: np.ndarray,
    elements: list[str],
    chosen: list[str] | None = None,
    max_channels: int = 3,
) -> list[int]:
    """Indices of the element channels used for images: the chosen ones, or
    the (at most three) elements whose composition varies most in the specimen."""
    if chosen:
        missing = [e for e in chosen if e not in elements]
        if missing:
            raise ValueError(f"element(s) {missing} not in the data (have {elements})")
        return [elements.index(e) for e in chosen]
    var = np.array([float(np.var(c[mask])) if mask.any() else 0.0 for c in comp])
    order = [int(i) for i in np.argsort(-var)]
    top = var[order[0]] if len(order) else 0.0
    keep = [i for i in order[:max_channels] if var[i] >= 0.05 * top and var[i] > 0]
    return keep or order[:1]


def phases_from_edges(
    edge: np.ndarray,
    comp: np.ndarray,
    tot: np.ndarray,
    mask: np.ndarray,
    volume=None,
    h: float = 0.05,
    smooth_vox: float = 1.0,
    max_regions: int = 800,
    progress: Progress | None = None,
) -> np.ndarray:
    """Closed regions of an edge-probability volume (int32, 0 outside ``mask``).

    The edge map is a landscape whose ridges are the interfaces; every basin
    (a regional minimum deeper than ``h``) seeds a region and a watershed
    grows the seeds up to the ridges. Regions never leak through a gap in a
    weak edge (they would with a fixed threshold), and over-segmentation is
    harmless: :func:`merge_by_composition` merges regions of equal
    composition into one phase.
    """
    from scipy import ndimage
    from skimage.morphology import h_minima
    from skimage.segmentation import watershed

    progress = as_progress(progress)
    progress.start(2, "regions from edges")
    land = ndimage.gaussian_filter(edge.astype(np.float32), smooth_vox) if smooth_vox else edge
    land = np.where(mask, land, 1.0).astype(np.float32)
    seeds, n = None, 0
    for hh in (h, 2 * h, 4 * h, 8 * h):
        seeds, n = ndimage.label(h_minima(land, hh).astype(bool) & mask)
        if n <= max_regions:
            break
    progress.advance()
    if n == 0:
        out = mask.astype(np.int32)
    else:
        out = watershed(land, seeds, mask=mask).astype(np.int32)
    progress.advance()
    return out


def _core_stats(labels: np.ndarray, counts: np.ndarray, erode: int = 1) -> dict[int, np.ndarray]:
    """Per-label summed counts (E,) over the label's core (eroded when possible)."""
    from scipy import ndimage

    out: dict[int, np.ndarray] = {}
    objs = ndimage.find_objects(labels)
    for i, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        m = labels[sl] == i
        core = ndimage.binary_erosion(m, iterations=erode) if erode else m
        use = core if core.sum() >= max(8, 0.1 * m.sum()) else m
        out[i] = counts[(slice(None), *sl)][:, use].sum(axis=1).astype(np.float64)
    return out


def _relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    for k, v in mapping.items():
        lut[k] = v
    return lut[labels]


def merge_by_composition(
    labels: np.ndarray,
    volume,
    min_contrast: float = 0.04,
    z_min: float = 6.0,
    min_region_voxels: int = 8,
    sigma_vox: float = 1.0,
) -> np.ndarray:
    """Merge regions into phases by composition (see module docstring).

    Returns labels renumbered 1..P (0 outside), phases ordered by decreasing
    atom count.
    """
    from scipy import ndimage

    labels = np.asarray(labels, np.int32)
    if labels.max() == 0:
        return labels
    counts = volume.counts
    # absorb tiny regions into their most common neighbour
    sizes = np.bincount(labels.ravel())
    tiny = [i for i in range(1, len(sizes)) if 0 < sizes[i] < min_region_voxels]
    if tiny and len(tiny) < len(sizes) - 1:
        t = np.isin(labels, tiny)
        big = np.where(t, 0, labels)
        idx = ndimage.distance_transform_edt(big == 0, return_distances=False, return_indices=True)
        filled = big[tuple(idx)]
        labels = np.where(t, filled, labels)
    stats = _core_stats(labels, counts)
    keys = list(stats)
    groups = {k: [k] for k in keys}
    C = np.stack([stats[k] for k in keys]) if keys else np.zeros((0, counts.shape[0]))
    alive = np.ones(len(keys), bool)
    inflate = 1.0 + 2.0 * sigma_vox  # smoothing correlates voxels

    def row(i: int) -> np.ndarray:
        na, nb = C[i], C
        Na, Nb = na.sum(), nb.sum(axis=1)
        pa = na / max(Na, 1.0)
        pb = nb / np.maximum(Nb, 1.0)[:, None]
        diff = np.abs(pa[None] - pb)
        p = (na[None] + nb) / np.maximum(Na + Nb, 1.0)[:, None]
        se = np.sqrt(
            np.maximum(p * (1 - p), 1e-12) * (1 / max(Na, 1.0) + 1 / np.maximum(Nb, 1.0))[:, None]
        )
        z = (diff / (se * inflate)).max(axis=1)
        d = diff.max(axis=1)
        score = np.where((d >= min_contrast) & (z >= z_min), np.inf, d)
        score[i] = np.inf
        score[~alive] = np.inf
        return score

    D = np.full((len(keys), len(keys)), np.inf)
    for i in range(len(keys)):
        D[i] = row(i)
    D = np.minimum(D, D.T)
    while alive.sum() > 1:
        flat = int(np.argmin(D))
        i, j = divmod(flat, len(keys))
        if not np.isfinite(D[i, j]):
            break
        C[i] = C[i] + C[j]
        alive[j] = False
        groups[keys[i]] += groups.pop(keys[j])
        D[j, :] = np.inf
        D[:, j] = np.inf
        r = row(i)
        D[i, :] = r
        D[:, i] = r
    comp_sum = {keys[i]: C[i] for i in range(len(keys)) if alive[i]}
    order = sorted(groups, key=lambda k: -comp_sum[k].sum())
    mapping = {}
    for new, k in enumerate(order, start=1):
        for old in groups[k]:
            mapping[old] = new
    return _relabel(labels, mapping)


def _is_mixture(k: int, mean: dict[int, np.ndarray], tol: float = 0.02) -> bool:
    """Whether phase ``k``'s composition lies between two other phases' (a mix)."""
    c = mean[k]
    others = [j for j in mean if j != k]
    for i, a in enumerate(others):
        for b in others[i + 1 :]:
            u = mean[b] - mean[a]
            uu = float(u @ u)
            if uu <= 0:
                continue
            t = float((c - mean[a]) @ u) / uu
            if 0.15 < t < 0.85 and np.abs(mean[a] + t * u - c).max() < tol:
                return True
    return False


def dissolve_shells(
    labels: np.ndarray, comp: np.ndarray, volume, keep_fraction: float = 0.2
) -> np.ndarray:
    """Dissolve thin "phases" that only line interfaces (a mixture class of
    voxels straddling a boundary, typical of GMM): a phase of which an
    erosion by one voxel keeps less than ``keep_fraction`` of its voxels, or
    less than half while its composition is a mixture of two other phases',
    is removed and its voxels go to the closest remaining phase by composition."""
    from scipy import ndimage

    n = int(labels.max())
    if n < 3:
        return labels
    stats = _core_stats(labels, volume.counts)
    mean = {k: v / max(v.sum(), 1.0) for k, v in stats.items()}
    thin = []
    for k in range(1, n + 1):
        m = labels == k
        nv = int(m.sum())
        if not nv or k not in mean:
            continue
        kept = ndimage.binary_erosion(m).sum() / nv
        if kept < keep_fraction or (kept < 0.5 and _is_mixture(k, mean)):
            thin.append(k)
    if not thin or len(thin) > n - 2:
        return labels
    keep = [k for k in range(1, n + 1) if k not in thin and k in stats]
    means = np.stack([stats[k] / max(stats[k].sum(), 1.0) for k in keep])
    sel = np.isin(labels, thin)
    c = comp[:, sel].T
    d = ((c[:, None, :] - means[None]) ** 2).sum(axis=2)
    out = labels.copy()
    out[sel] = np.asarray(keep)[np.argmin(d, axis=1)]
    # renumber 1..P by decreasing size
    sizes = np.bincount(out.ravel(), minlength=n + 1)
    order = [k for k in np.argsort(-sizes) if k > 0 and sizes[k] > 0]
    return _relabel(out, {int(k): i for i, k in enumerate(order, start=1)})


def refine_boundaries(
    labels: np.ndarray, comp: np.ndarray, mask: np.ndarray, volume, band: int = 2
) -> np.ndarray:
    """Reassign voxels within ``band`` voxels of a phase boundary to the
    neighbouring phase of closest mean composition."""
    from scipy import ndimage

    n = int(labels.max())
    if n < 2:
        return labels
    stats = _core_stats(labels, volume.counts, erode=2)
    means = {k: v / max(v.sum(), 1.0) for k, v in stats.items()}
    near = np.zeros((n + 1, *labels.shape), bool)
    struct = ndimage.generate_binary_structure(3, 1)
    for k in range(1, n + 1):
        near[k] = ndimage.binary_dilation(labels == k, struct, iterations=band)
    n_near = near[1:].sum(axis=0)
    zone = mask & (n_near >= 2)
    if not zone.any():
        return labels
    c = comp[:, zone].T  # (V, E)
    best = np.zeros(len(c), np.int32)
    best_d = np.full(len(c), np.inf)
    for k in range(1, n + 1):
        if k not in means:
            continue
        d = ((c - means[k][None]) ** 2).sum(axis=1)
        d[~near[k][zone]] = np.inf
        upd = d < best_d
        best[upd], best_d[upd] = k, d[upd]
    out = labels.copy()
    out[zone] = np.where(best > 0, best, out[zone])
    return out


def clean_islands(labels: np.ndarray, min_voxels: int = 8) -> np.ndarray:
    """Give connected pieces of a phase smaller than ``min_voxels`` (speckle of
    counting noise next to an interface) to the nearest other phase."""
    from scipy import ndimage

    n = int(labels.max())
    if n < 2:
        return labels
    out = labels.copy()
    drop = np.zeros(labels.shape, bool)
    for k in range(1, n + 1):
        comp, m = ndimage.label(labels == k)
        if m <= 1:
            continue
        sizes = np.bincount(comp.ravel())
        small = sizes < min_voxels
        small[0] = False
        if small.any() and (~small[1:]).any():
            drop |= small[comp]
    if drop.any():
        keep = np.where(drop, 0, out)
        idx = ndimage.distance_transform_edt(
            keep == 0, return_distances=False, return_indices=True
        )
        filled = keep[tuple(idx)]
        out = np.where(drop, filled, out)
    return out


def adjacent_pairs(labels: np.ndarray) -> dict[tuple[int, int], int]:
    """Pairs of different phases touching across voxel faces -> number of faces."""
    pairs: dict[tuple[int, int], int] = {}
    for ax in range(labels.ndim):
        a = np.moveaxis(labels, ax, 0)
        u, v = a[:-1].ravel(), a[1:].ravel()
        sel = (u != v) & (u > 0) & (v > 0)
        if not sel.any():
            continue
        lo, hi = np.minimum(u[sel], v[sel]), np.maximum(u[sel], v[sel])
        keys, cnt = np.unique(lo.astype(np.int64) * 65536 + hi, return_counts=True)
        for k, c in zip(keys, cnt):
            key = (int(k // 65536), int(k % 65536))
            pairs[key] = pairs.get(key, 0) + int(c)
    return pairs


def phase_table(labels: np.ndarray, volume) -> list[dict[str, Any]]:
    """Per phase: label, voxel count, atom count, mean composition (at.%)."""
    table = []
    n = int(labels.max())
    flat = labels.ravel()
    for k in range(1, n + 1):
        sel = flat == k
        nv = int(sel.sum())
        if nv == 0:
            continue
        c = volume.counts.reshape(len(volume.elements), -1)[:, sel].sum(axis=1).astype(np.float64)
        N = float(c.sum())
        table.append(
            {
                "label": k,
                "n_voxels": nv,
                "volume_nm3": nv * float(np.prod(volume.grid.spacing)),
                "n_atoms": int(round(N)),
                "composition": {
                    e: round(100.0 * float(c[i]) / N, 3) if N else 0.0
                    for i, e in enumerate(volume.elements)
                },
            }
        )
    return table


def make_result(labels, volume, edge, method, channels, info=None):
    """Wrap labels into an :class:`~napari_interfaces.apt.volume.InterfaceResult`."""
    table = phase_table(labels, volume)
    pairs = adjacent_pairs(labels) if len(table) > 1 else {}
    if len(table) > 1:
        msg = f"{len(pairs)} interface(s) between {len(table)} phases"
    else:
        msg = NO_INTERFACE
    return InterfaceResult(
        labels=labels.astype(np.int32),
        phases=table,
        edge_prob=edge,
        grid=volume.grid,
        elements=list(volume.elements),
        method=method,
        message=msg,
        interfaces=sorted(pairs),
        info={"channels": [volume.elements[i] for i in channels], **(info or {})},
    )
