"""The data types passed between the APT interface steps (the bottom of the pipeline).

:class:`AtomSet` holds atoms (molecular ions already decomposed: one CrO2 ion
is one Cr and two O atoms at the ion's position) as positions in nm and an
element index. :class:`CompositionVolume` holds per-element atom counts on a
voxel grid (:class:`~napari_interfaces.core.geometry.Grid`, axes ``zyx``).
:class:`InterfaceResult` is what :func:`~napari_interfaces.apt.interfaces.find_interfaces`
returns. The pipeline steps (``voxelize``, ``phases``, ``auto``, ``interfaces``)
import these types from here; this module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.geometry import Grid

__all__ = ["AtomSet", "CompositionVolume", "InterfaceResult", "NO_INTERFACE"]

NO_INTERFACE = "no interface found"


@dataclass
class AtomSet:
    """Atoms: ``xyz`` (n, 3) in nm (x, y, z) and ``element`` (n,) index into ``elements``."""

    xyz: np.ndarray
    element: np.ndarray
    elements: list[str]

    def __post_init__(self) -> None:
        self.xyz = np.asarray(self.xyz, dtype=np.float32)
        self.element = np.asarray(self.element, dtype=np.int16)
        if self.xyz.ndim != 2 or self.xyz.shape[1] != 3 or len(self.element) != len(self.xyz):
            raise ValueError("xyz must be (n, 3) and element (n,)")

    @property
    def n(self) -> int:
        return len(self.element)

    def zyx(self) -> np.ndarray:
        return self.xyz[:, ::-1]


@dataclass
class CompositionVolume:
    """Per-element atom counts on a voxel grid.

    Attributes
    ----------
    counts : ndarray float32 (E, Z, Y, X)
    elements : list of str
    grid : Grid with axes ``"zyx"`` and spacing in nm
    """

    counts: np.ndarray
    elements: list[str]
    grid: Grid

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.counts.shape[1:])  # type: ignore[return-value]

    @property
    def total(self) -> np.ndarray:
        return self.counts.sum(axis=0)

    def composition(self, sigma_vox: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Atomic fractions (E, Z, Y, X) and the (smoothed) total counts.

        With ``sigma_vox > 0`` the counts and the total are smoothed with the
        same Gaussian kernel before dividing (a kernel density estimate of
        the composition). Voxels without atoms get the overall mean.
        """
        from scipy import ndimage

        c = self.counts.astype(np.float32)
        if sigma_vox > 0:
            c = np.stack([ndimage.gaussian_filter(ch, sigma_vox, mode="nearest") for ch in c])
        tot = c.sum(axis=0)
        mean = self.counts.sum(axis=(1, 2, 3)) / max(float(self.counts.sum()), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            comp = c / tot[None]
        empty = tot <= 1e-6
        comp[:, empty] = mean[:, None]
        return comp, tot

    def specimen_mask(self, sigma_vox: float = 1.0, frac: float = 0.25) -> np.ndarray:
        """Voxels inside the specimen: smoothed density above ``frac`` of its median."""
        from scipy import ndimage

        tot = self.total.astype(np.float32)
        sm = ndimage.gaussian_filter(tot, sigma_vox, mode="constant") if sigma_vox > 0 else tot
        ref = np.median(sm[tot > 0]) if np.any(tot > 0) else 0.0
        return sm > frac * ref


@dataclass
class InterfaceResult:
    """Output of :func:`find_interfaces`.

    Attributes
    ----------
    labels : int32 (Z, Y, X): 0 outside the specimen, phases 1..P
    phases : list of dict: ``label``, ``n_voxels``, ``n_atoms``, ``composition``
        (element -> at.%)
    edge_prob : float32 (Z, Y, X) or None (HED only)
    grid : Grid
    elements : list of str
    method : str
    message : str: ``"N interface(s) between P phases"`` or ``"no interface found"``
    """

    labels: np.ndarray
    phases: list[dict[str, Any]]
    edge_prob: np.ndarray | None
    grid: Grid
    elements: list[str]
    method: str
    message: str
    interfaces: list[tuple[int, int]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_phases(self) -> int:
        return len(self.phases)

    @property
    def found(self) -> bool:
        return self.n_phases > 1
