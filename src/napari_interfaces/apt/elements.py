"""Moved to :mod:`napari_interfaces.aptmodel.elements` (the APT data model, below ``io``).

The names stay importable from this old path. To patch one in a test, patch
it in :mod:`napari_interfaces.aptmodel.elements`, where it is used.
"""

from ..aptmodel.elements import ISOTOPES, SYMBOLS, formula, is_element, parse_formula

__all__ = ["ISOTOPES", "SYMBOLS", "formula", "is_element", "parse_formula"]
