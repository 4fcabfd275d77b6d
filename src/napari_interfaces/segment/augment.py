"""Dihedral data augmentation (the 8 symmetries of the square).

HRTEM images have no preferred orientation, so every training crop is shown
in one of the eight rotations/reflections of the dihedral group D4. The same
transform is applied to the image and its labels.

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

__all__ = ["N_DIHEDRAL", "dihedral", "dihedral_inverse", "random_dihedral"]

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


def _is_torch(a) -> bool:
    return type(a).__module__.startswith("torch")
