"""Moved to :mod:`napari_interfaces.aptmodel._numba`; the name stays importable here."""

from ..aptmodel._numba import kernels

__all__ = ["kernels"]
