"""Ground-truth labels for simulated HRTEM images.

Two definitions, both returned as uint8/int32 arrays on the image grid
``(ny, nx)``:

1. **Exit-wave labels** (Rangel DaCosta et al., npj Comput. Mater. 2024):
   simulate the *particle-only* structure (no substrate), take the phase of
   its exit wave in each frozen-phonon configuration after smoothing the
   complex wave with a Gaussian of full width at half maximum ``smoothing``
   Å (default 1 Å, i.e. sigma = 0.42 Å; the phase
   of the smoothed wave is a circular mean, safe against phase wrapping, and
   fills the gaps between atom columns), threshold it (default
   ``phase > pi/12``), take the majority over configurations, close the
   gaps between atom columns (morphological closing with a disk of radius
   ``closing`` Å, default 2.5 Å, so zone-axis particles whose phase is
   concentrated on the columns become solid) and fill holes.
2. **Projected-atom labels**: every pixel within ``radius`` Å (default
   1.5 Å) of a particle atom's projected (x, y) position, followed by a
   morphological closing over ``radius`` and hole filling.

A ``margin`` (:func:`shrink_mask`, the ``label_margin`` sample parameter)
moves either boundary inwards by that many Å: the boundary a microscopist
draws is where the particle's contrast stands out of the support's, which
the thin outer shell of a rounded particle (few atoms per column, its
contrast spread by the image's blur) does not. Measured on the real frames
of ``benchmarks/bench_segment_real.py``, models trained on the plain
exit-wave definition draw particles about 25 % larger in area than hand
masks do (see ``docs/hrtem_segmentation.md``).

Instance labels give each pixel of a mask the id (1..n) of the particle
whose nearest projected atom it is (``particle_id`` array of the
structure); background is 0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "atom_labels",
    "exit_wave_labels",
    "instance_labels",
    "resize_labels",
    "shrink_mask",
]


def exit_wave_labels(
    waves,
    sampling,
    threshold: float = np.pi / 12,
    smoothing: float = 1.0,
    closing: float = 2.5,
) -> np.ndarray:
    """Binary mask (uint8) from particle-only exit wave(s) ``(n, ny, nx)`` or ``(ny, nx)``.

    ``smoothing`` is the FWHM (Å) of the Gaussian applied to the complex wave.
    Thin particles (mean phase below ``threshold``, e.g. Au thinner than
    about 3 nm at 200 kV) give sparse masks around the atom columns; use
    :func:`atom_labels` for them. Phase is measured relative to vacuum (a plane wave has phase 0 here).
    """
    from scipy import ndimage

    waves = np.asarray(waves)
    if waves.ndim == 2:
        waves = waves[None]
    fwhm = 2 * np.sqrt(2 * np.log(2))
    sig = (smoothing / fwhm / sampling[1], smoothing / fwhm / sampling[0])
    votes = np.zeros(waves.shape[-2:], np.int32)
    for w in waves:
        if max(sig) > 0:
            w = ndimage.gaussian_filter(w.real, sig, mode="wrap") + 1j * ndimage.gaussian_filter(
                w.imag, sig, mode="wrap"
            )
        votes += np.angle(w) > threshold
    mask = votes * 2 > waves.shape[0]
    if closing > 0 and mask.any():
        # closing by a disk of radius `closing` via two Euclidean distance
        # transforms (fast for large radii); wrap-padded (periodic cell)
        dx, dy = sampling
        ry, rx = int(np.ceil(closing / dy)) + 1, int(np.ceil(closing / dx)) + 1
        padded = np.pad(mask, ((ry, ry), (rx, rx)), mode="wrap")
        dilated = ndimage.distance_transform_edt(~padded, sampling=(dy, dx)) <= closing
        closed = ndimage.distance_transform_edt(dilated, sampling=(dy, dx)) > closing
        mask = closed[ry:-ry, rx:-rx] | mask
    return ndimage.binary_fill_holes(mask).astype(np.uint8)


def atom_labels(positions, shape, sampling, radius: float = 1.5) -> np.ndarray:
    """Binary mask (uint8) of pixels within ``radius`` Å of projected atoms (periodic)."""
    from scipy import ndimage

    ny, nx = shape
    dx, dy = sampling
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    seed = np.zeros(shape, bool)
    if len(positions):
        ix = np.round(positions[:, 0] / dx).astype(int) % nx
        iy = np.round(positions[:, 1] / dy).astype(int) % ny
        seed[iy, ix] = True
    else:
        return seed.astype(np.uint8)
    dist = ndimage.distance_transform_edt(~seed, sampling=(dy, dx))
    mask = dist <= radius
    r = max(1, int(round(radius / min(dx, dy))))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = (xx * dx) ** 2 + (yy * dy) ** 2 <= radius**2
    mask = ndimage.binary_closing(mask, structure=disk)
    mask = ndimage.binary_fill_holes(mask)
    return mask.astype(np.uint8)


def instance_labels(mask, positions, particle_ids, sampling) -> np.ndarray:
    """Per-particle ids (int32) on ``mask``: id of the nearest projected particle atom."""
    from scipy.spatial import cKDTree

    mask = np.asarray(mask, bool)
    out = np.zeros(mask.shape, np.int32)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    ids = np.asarray(particle_ids).astype(np.int32)
    if not mask.any() or len(positions) == 0:
        return out
    if len(ids) and np.all(ids == ids[0]):  # one particle: no nearest-atom search needed
        out[mask] = ids[0]
        return out
    ny, nx = mask.shape
    dx, dy = sampling
    iy, ix = np.nonzero(mask)
    tree = cKDTree(positions[:, :2] % (nx * dx, ny * dy), boxsize=(nx * dx, ny * dy))
    pts = np.stack([ix * dx, iy * dy], 1) % (nx * dx, ny * dy)
    _, nearest = tree.query(pts)
    out[iy, ix] = ids[nearest]
    return out


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label image to ``shape`` (same field of view).

    Pixel centres map to pixel centres, so ids are never mixed.

    >>> resize_labels(np.array([[1, 2], [3, 4]]), (4, 4))[0].tolist()
    [1, 1, 2, 2]
    """
    labels = np.asarray(labels)
    if labels.shape == tuple(shape):
        return labels
    ny, nx = labels.shape
    iy = np.minimum((np.arange(shape[0]) + 0.5) * ny / shape[0], ny - 1).astype(int)
    ix = np.minimum((np.arange(shape[1]) + 0.5) * nx / shape[1], nx - 1).astype(int)
    return labels[iy][:, ix]


def shrink_mask(mask, sampling, margin: float) -> np.ndarray:
    """Move a mask's boundary inwards by ``margin`` Å (outwards when negative).

    Pixels closer than ``margin`` to the background are removed (a Euclidean
    erosion on the periodic cell); objects thinner than ``2 × margin``
    vanish, so keep ``margin`` small against the particles (≲ 2 Å).

    >>> m = np.zeros((40, 40), np.uint8); m[10:30, 10:30] = 1
    >>> int(shrink_mask(m, (0.5, 0.5), 1.0).sum())   # 2 px off each side
    256
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not margin or not mask.any():
        return mask.astype(np.uint8)
    dx, dy = sampling
    py, px = int(np.ceil(abs(margin) / dy)) + 1, int(np.ceil(abs(margin) / dx)) + 1
    if margin > 0:
        padded = np.pad(mask, ((py, py), (px, px)), mode="wrap")
        out = ndimage.distance_transform_edt(padded, sampling=(dy, dx)) > margin
    else:
        padded = np.pad(~mask, ((py, py), (px, px)), mode="wrap")
        out = ndimage.distance_transform_edt(padded, sampling=(dy, dx)) <= -margin
    return out[py:-py, px:-px].astype(np.uint8)
