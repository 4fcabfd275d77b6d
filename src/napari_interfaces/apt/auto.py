"""The default phase finder ``"auto"``: composition mixture + mass-conserving particles.

Why: HED (edges on composition slices) and thresholds of a smoothed
composition both lose small precipitates. HED's edges of a 2–3 voxel
particle are weak and close into nothing; a smoothed composition's
mid-level surface of a sphere of radius ``r`` lies about ``σ² / r`` inside
the true one (σ: smoothing plus reconstruction blur), so particles of
r ≈ 1.5 nm shrink by a third or vanish.

How:

1. **Detection** – the two-phase labels of the iso-concentration method
   (Otsu threshold of the smoothed composition of the element that two
   classes explain best, :func:`best_iso_channel`), merged by composition and refined at the mid-composition
   crossing as for every method (:mod:`.phases`).
2. **Mass-conserving particles** – every compact piece of the minority
   phase (a precipitate, not a layer or a network: its volume is below
   ``max_particle_nm3`` and it is not among the pieces spanning the
   specimen) is re-drawn: its **size** comes from the solute excess in its
   neighbourhood (raw counts, not smoothed), which blur and smoothing do
   not change (pieces holding several particles, e.g. on a grain boundary,
   are first split by a watershed of the precipitate fraction),

       V = Σ_R (c(v) − c_m) · N(v) / ((c_p − c_m) · ρ)

   of the detection element (other elements may also change at a
   segregated boundary), with ``c_m`` / ``c_p`` the phases' core compositions, ``N(v)``
   the atoms of voxel ``v``, ρ the mean atoms per voxel of ``R`` and ``R`` the
   voxels within ``reach_nm`` of the piece that are nearer to it than to any
   other piece; its **shape** is the ``V`` voxels of ``R`` with the highest
   (lightly smoothed) precipitate fraction.

The result reports per precipitate (``info["particles"]``) the voxel
count, the equivalent radius and the solute-excess estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["auto_interfaces", "best_iso_channel", "mass_conserving_particles"]


def _projection(volume, labels: np.ndarray, matrix: int, ppt: int, channels=None, erode=1):
    """Core compositions of the two phases and the projection onto their difference
    (restricted to ``channels``), scaled so that the precipitate projects to 1."""
    from .phases import _core_stats

    stats = _core_stats(labels, volume.counts, erode=erode)
    cm = stats[matrix] / max(stats[matrix].sum(), 1.0)
    cp = stats[ppt] / max(stats[ppt].sum(), 1.0)
    u = cp - cm
    if channels is not None:
        keep = np.zeros(len(u), bool)
        keep[list(channels)] = True
        u = np.where(keep, u, 0.0)
    return cm, cp, u / max(float(u @ u), 1e-12)


def split_touching(
    pieces: np.ndarray, frac: np.ndarray, max_voxels: float, h: float = 0.25
) -> tuple[np.ndarray, int]:
    """Split pieces (at most ``max_voxels``, not a layer: spanning two axes
    and filling >= 30 % of the bounding box) that hold several maxima
    of the precipitate fraction deeper than ``h`` (e.g. particles on a grain
    boundary bridged by the smoothing) by a watershed of the fraction;
    larger pieces (layers, networks) are kept whole. Returns relabelled
    pieces 1..n and n."""
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    out = np.zeros_like(pieces)
    n = 0
    for k, sl in enumerate(ndimage.find_objects(pieces), start=1):
        if sl is None:
            continue
        m = pieces[sl] == k
        ext = [(s.stop - s.start) / dim for s, dim in zip(sl, pieces.shape)]
        # a layer or network spans two axes and fills much of its box; a chain
        # of particles along a boundary plane spans them too but fills little
        layer = sum(e >= 0.8 for e in ext) >= 2 and m.mean() >= 0.3
        if 8 <= m.sum() <= max_voxels and not layer:
            f = np.where(m, frac[sl], frac[sl][m].min())
            peaks, npk = ndimage.label(h_maxima(f, h).astype(bool) & m)
            if npk > 1:
                sub = watershed(-f, peaks, mask=m)
                sub_out = out[sl]
                sub_out[m] = sub[m] + n
                n += int(sub.max())
                continue
        sub_out = out[sl]
        n += 1
        sub_out[m] = n
    return out, n


def mass_conserving_particles(
    labels: np.ndarray,
    volume,
    comp: np.ndarray,
    mask: np.ndarray,
    ppt: int,
    matrix: int,
    reach_nm: float = 2.0,
    max_particle_nm3: float = 300.0,
    split_h: float = 0.25,
    channels: list[int] | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Re-draw compact pieces of phase ``ppt`` with the solute-excess volume (module docs).

    ``comp`` is the (lightly smoothed) composition used to rank voxels;
    ``channels`` restricts the solute excess to those elements (``auto`` uses
    the detection element: a segregated boundary changes other elements).
    Returns the new labels and one dict per re-drawn particle.
    """
    from scipy import ndimage

    spacing = np.asarray(volume.grid.spacing, float)
    vvox = float(np.prod(spacing))
    pieces, n = ndimage.label(labels == ppt)
    if n == 0:
        return labels, []
    cm, cp, u = _projection(volume, labels, matrix, ppt, channels)
    # per-voxel precipitate fraction: raw (for the mass) and smoothed (for the ranking)
    counts = volume.counts.astype(np.float64)
    tot = counts.sum(axis=0)
    excess = np.tensordot(u, counts - cm[:, None, None, None] * tot[None], axes=(0, 0))
    frac_s = np.tensordot(u, comp - cm[:, None, None, None], axes=(0, 0))
    pieces, n = split_touching(pieces, frac_s, 10 * max_particle_nm3 / vvox, split_h)
    sizes = np.bincount(pieces.ravel())[1:] * vvox
    # nearest piece and distance to it, for every voxel
    dist, idx = ndimage.distance_transform_edt(pieces == 0, sampling=spacing, return_indices=True)
    owner = pieces[tuple(idx)]
    out = labels.copy()
    info: list[dict[str, Any]] = []
    objs = ndimage.find_objects(pieces)
    pad = [int(np.ceil(reach_nm / s)) + 1 for s in spacing]
    for k, sl in enumerate(objs, start=1):
        if sl is None or sizes[k - 1] > max_particle_nm3:
            continue
        sl = tuple(
            slice(max(s.start - p, 0), min(s.stop + p, dim))
            for s, p, dim in zip(sl, pad, labels.shape)
        )
        region = (owner[sl] == k) & (dist[sl] <= reach_nm) & mask[sl]
        region &= (out[sl] == ppt) | (out[sl] == matrix)
        if not region.any():
            continue
        e = float(excess[sl][region].sum())
        # local density: the atoms of the region over its voxels (edge voxels of the
        # specimen, partly empty, would bias a global mean low)
        rho_r = float(tot[sl][region].sum()) / max(int(region.sum()), 1)
        nvox = int(round(max(e, 0.0) / max(rho_r, 1e-9)))
        f = frac_s[sl][region]
        order = np.argsort(-f, kind="stable")
        new = np.zeros(len(f), bool)
        new[order[: min(nvox, len(f))]] = True
        sub = out[sl]
        vals = sub[region]
        vals = np.where(new, ppt, matrix)
        sub[region] = vals
        info.append(
            {
                "piece": k,
                "n_voxels": nvox,
                "volume_nm3": round(nvox * vvox, 3),
                "radius_nm": round(float((3 * nvox * vvox / (4 * np.pi)) ** (1 / 3)), 3),
                "excess_atoms": round(e, 1),
            }
        )
    return out, info


def best_iso_channel(comp: np.ndarray, mask: np.ndarray, channels: list[int]) -> int:
    """The channel whose specimen histogram two classes explain best: the largest
    Otsu effectiveness (between-class / total variance). An element that also
    varies at a third feature (e.g. Fe depleted by Ni segregation at a grain
    boundary) scores lower than one that only differs between the two phases."""
    from skimage.filters import threshold_otsu

    best, best_eta = channels[0], -1.0
    for ch in channels:
        v = comp[ch][mask].astype(np.float64)
        if v.size < 2 or np.ptp(v) <= 0:
            continue
        t = threshold_otsu(v)
        lo, hi = v[v < t], v[v >= t]
        if not len(lo) or not len(hi):
            continue
        w0, w1 = len(lo) / v.size, len(hi) / v.size
        eta = w0 * w1 * (hi.mean() - lo.mean()) ** 2 / max(float(v.var()), 1e-12)
        if eta > best_eta:
            best, best_eta = ch, eta
    return best


def auto_interfaces(
    volume,
    *,
    elements: list[str] | None = None,
    sigma_vox: float = 1.0,
    refine_sigma: float = 0.75,
    reach_nm: float = 2.0,
    max_particle_nm3: float = 300.0,
    progress: Progress | None = None,
    **_: Any,
):
    """Segment ``volume`` with the ``"auto"`` method (module docstring).

    Returns an :class:`~napari_interfaces.apt.volume.InterfaceResult`
    with ``method="auto"``; ``info`` holds ``detection`` (the method used to
    detect the phases), ``particles`` (per re-drawn precipitate) and
    ``n_particles``.
    """
    from . import phases as ph
    from .baselines import iso_concentration

    progress = as_progress(progress)
    progress.start(3, "auto: phases")
    mask = volume.specimen_mask()
    comp, tot = volume.composition(sigma_vox)
    channels = ph.select_channels(comp, mask, volume.elements, elements)
    best = best_iso_channel(comp, mask, channels)
    labels = iso_concentration(comp, tot, mask, volume, channels=[best])
    labels = ph.merge_by_composition(labels, volume, sigma_vox=sigma_vox)
    labels = ph.dissolve_shells(labels, comp, volume)
    rcomp = comp if refine_sigma == sigma_vox else volume.composition(refine_sigma)[0]
    if labels.max() > 1:
        labels = ph.refine_boundaries(labels, rcomp, mask, volume)
        labels = ph.clean_islands(labels)
    progress.advance(description="auto: particles")
    particles: list[dict[str, Any]] = []
    if labels.max() == 2:
        sizes = np.bincount(labels.ravel(), minlength=3)
        ppt, matrix = (1, 2) if sizes[1] < sizes[2] else (2, 1)
        labels, particles = mass_conserving_particles(
            labels,
            volume,
            rcomp,
            mask,
            ppt,
            matrix,
            reach_nm,
            max_particle_nm3,
            channels=[best],
        )
    progress.advance()
    info = {
        "detection": f"iso ({volume.elements[best]})",
        "n_particles": len(particles),
        "particles": particles,
    }
    res = ph.make_result(labels, volume, None, "auto", channels, info)
    progress.advance()
    return res
