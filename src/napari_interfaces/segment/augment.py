"""Data augmentation: dihedral symmetries, scale and resolution.

HRTEM images have no preferred orientation, so every training crop is shown
in one of the eight rotations/reflections of the dihedral group D4. The same
transform is applied to the image and its labels.

Users' files often carry no (or a wrong) pixel size, so the image reaches the
network at the wrong scale. :func:`random_scale_crop` shows every training
crop magnified by a random factor (log-uniform, e.g. 0.5–2: particles and
lattice fringes half to twice their size at the model's pixel size), and
:func:`degrade_resolution` blurs some images as a coarser detector
sampling would (an image recorded at 1–2 Å/px and resampled to the model's
0.2 Å/px shows no lattice fringes), so the model segments by the particles'
contrast too.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.segment.augment import dihedral, dihedral_inverse
>>> a = np.arange(6).reshape(2, 3)
>>> all((dihedral_inverse(dihedral(a, k), k) == a).all() for k in range(8))
True
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "N_DIHEDRAL",
    "degrade_resolution",
    "dihedral",
    "dihedral_inverse",
    "random_dihedral",
    "random_scale_crop",
]

#: Number of elements of the dihedral group of the square.
N_DIHEDRAL = 8


def dihedral(a, k: int, axes: tuple[int, int] = (-2, -1)):
    """Apply the ``k``-th dihedral transform (0..7) to the last two axes.

    ``k % 4`` quarter turns (``np.rot90``), then a left-right flip when
    ``k >= 4``. Works on NumPy arrays and torch tensors.
    """
    k = int(k)
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    if _is_torch(a):
        import torch

        out = torch.rot90(a, k % 4, dims=axes)
        return torch.flip(out, dims=(axes[1],)) if k >= 4 else out
    out = np.rot90(a, k % 4, axes=axes)
    return np.flip(out, axis=axes[1]) if k >= 4 else out


def dihedral_inverse(a, k: int, axes: tuple[int, int] = (-2, -1)):
    """Undo :func:`dihedral` with the same ``k``."""
    k = int(k)
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    if _is_torch(a):
        import torch

        out = torch.flip(a, dims=(axes[1],)) if k >= 4 else a
        return torch.rot90(out, -(k % 4), dims=axes)
    out = np.flip(a, axis=axes[1]) if k >= 4 else a
    return np.rot90(out, -(k % 4), axes=axes)


def random_dihedral(rng: np.random.Generator, *arrays):
    """Apply one random dihedral transform (same for all ``arrays``).

    Returns a tuple of contiguous NumPy arrays (the transform index is drawn
    from ``rng``, so augmentation is reproducible).
    """
    k = int(rng.integers(N_DIHEDRAL))
    return tuple(np.ascontiguousarray(dihedral(a, k)) for a in arrays)


def random_scale_crop(
    rng: np.random.Generator,
    image: np.ndarray,
    labels: np.ndarray,
    crop: int,
    scale_range: tuple[float, float] = (0.5, 2.0),
) -> tuple[np.ndarray, np.ndarray]:
    """A ``crop`` × ``crop`` window magnified by a random factor.

    The factor ``s`` is log-uniform in ``scale_range``: a region of
    ``crop / s`` pixels is cut at a random place and resampled to ``crop``
    (linear for the image, nearest for the labels). Regions larger than the
    sample are reflect-padded (image and labels alike).

    Examples
    --------
    >>> import numpy as np
    >>> img, lab = np.zeros((64, 64), np.float32), np.zeros((64, 64), np.uint8)
    >>> [a.shape for a in random_scale_crop(np.random.default_rng(0), img, lab, 32)]
    [(32, 32), (32, 32)]
    """
    from scipy import ndimage

    lo, hi = (float(v) for v in scale_range)
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
    region = max(2, int(round(crop / s)))
    h, w = image.shape
    if h < region or w < region:
        ph, pw = max(0, region - h), max(0, region - w)
        pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
        mode = "reflect" if (ph < h and pw < w) else "symmetric"
        image = np.pad(image, pad, mode=mode)
        labels = np.pad(labels, pad, mode=mode)
        h, w = image.shape
    y0 = int(rng.integers(0, h - region + 1))
    x0 = int(rng.integers(0, w - region + 1))
    image = image[y0 : y0 + region, x0 : x0 + region]
    labels = labels[y0 : y0 + region, x0 : x0 + region]
    if region != crop:
        z = crop / region
        image = ndimage.zoom(image, z, order=1, prefilter=False, grid_mode=True, mode="nearest")
        labels = ndimage.zoom(labels, z, order=0, prefilter=False, grid_mode=True, mode="nearest")
    image, labels = image[:crop, :crop], labels[:crop, :crop]
    if image.shape != (crop, crop):  # zoom rounding
        pad = ((0, crop - image.shape[0]), (0, crop - image.shape[1]))
        image, labels = np.pad(image, pad, mode="edge"), np.pad(labels, pad, mode="edge")
    return image, labels


def degrade_resolution(
    rng: np.random.Generator,
    image: np.ndarray,
    factor_range: tuple[float, float] = (1.0, 8.0),
) -> np.ndarray:
    """Blur ``image`` as sampling ``b`` times coarser would (``b`` log-uniform).

    A Gaussian of σ = 0.5·b px (about the transfer of a b-pixel box) followed
    by white noise at 2 % of the image's standard deviation.
    """
    from scipy import ndimage

    lo, hi = (float(v) for v in factor_range)
    b = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    out = ndimage.gaussian_filter(np.asarray(image, np.float32), 0.5 * b)
    sd = float(out.std()) or 1.0
    return (out + rng.normal(0, 0.02 * sd, out.shape)).astype(np.float32)


def _is_torch(a) -> bool:
    return type(a).__module__.startswith("torch")
