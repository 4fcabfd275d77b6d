"""Arrays that carry their sampling geometry.

Geometry (origin, spacing, units) travels with data from readers to layers
and writers, so napari shows nm and Å correctly and files keep it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Grid", "GriddedArray"]


@dataclass(frozen=True)
class Grid:
    """A regular grid: ``coordinate = origin + index * spacing``.

    Parameters
    ----------
    origin : tuple of float
        Coordinate of the centre of element ``(0, ..., 0)``, per axis.
    spacing : tuple of float
        Step between elements per axis (voxel or pixel size).
    unit : str
        Length unit of ``origin`` and ``spacing`` (``"nm"`` or ``"Å"``).
    axes : str
        Axis names, e.g. ``"zyx"``, matching array axis order.
    """

    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    unit: str = "nm"
    axes: str = "zyx"

    def __post_init__(self) -> None:
        if len(self.origin) != len(self.spacing) or len(self.axes) != len(self.spacing):
            raise ValueError("origin, spacing and axes must have the same length")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive and finite, got {self.spacing}")

    @property
    def ndim(self) -> int:
        return len(self.spacing)

    def layer_kwargs(self) -> dict[str, Any]:
        """``scale``/``translate``/``units``/``axis_labels`` for a napari layer."""
        return {
            "scale": tuple(self.spacing),
            "translate": tuple(self.origin),
            "units": (self.unit,) * self.ndim,
            "axis_labels": tuple(self.axes),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": list(self.origin),
            "spacing": list(self.spacing),
            "unit": self.unit,
            "axes": self.axes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grid:
        return cls(
            tuple(d["origin"]), tuple(d["spacing"]), d.get("unit", "nm"), d.get("axes", "zyx")
        )


@dataclass
class GriddedArray:
    """An array with its :class:`Grid` and free-form metadata."""

    data: np.ndarray
    grid: Grid
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim < self.grid.ndim:
            raise ValueError(f"array has {self.data.ndim} dims, grid has {self.grid.ndim}")
