"""The one table of length units: spellings, Å per unit, ImageJ names.

Readers (micrograph pixel sizes, TIFF calibrations), writers (ImageJ
metadata) and the napari glue (``layer.units``) all convert through here, so
``"angstrom"``, ``"Å"`` and ``"A"`` mean the same everywhere and an image
without a calibration is explicitly in ``"pixel"``.

Examples
--------
>>> from napari_interfaces.core.units import canonical_unit, to_angstrom
>>> canonical_unit("nanometer"), canonical_unit("Angstrom"), canonical_unit(None)
('nm', 'Å', 'pixel')
>>> to_angstrom(0.5, "nm"), to_angstrom(3.0, "pixel")
(5.0, None)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "ANGSTROM_PER_UNIT",
    "IMAGEJ_UNITS",
    "PIXEL",
    "UNIT_ALIASES",
    "angstrom_per",
    "canonical_unit",
    "to_angstrom",
]

#: The unit of an image or volume with no physical calibration.
PIXEL = "pixel"

#: Canonical length unit -> Å per unit.
ANGSTROM_PER_UNIT: dict[str, float] = {
    "Å": 1.0,
    "pm": 0.01,
    "nm": 10.0,
    "µm": 1e4,
    "mm": 1e7,
    "cm": 1e8,
    "m": 1e10,
    "inch": 2.54e8,
}

#: Spellings (files, napari/pint ``layer.units``, users) -> canonical name. Looked
#: up as written, then lower-cased.
UNIT_ALIASES: dict[str, str] = {
    "Å": "Å",  # U+00C5
    "\u212b": "Å",  # ANGSTROM SIGN
    "å": "Å",
    "a": "Å",
    "ang": "Å",
    "angstrom": "Å",
    "angstroms": "Å",
    "\\u00c5": "Å",  # ImageJ's escaped unit string
    "pm": "pm",
    "picometer": "pm",
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "um": "µm",
    "µm": "µm",  # U+00B5 MICRO SIGN
    "μm": "µm",  # U+03BC GREEK SMALL LETTER MU
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "mm": "mm",
    "millimeter": "mm",
    "cm": "cm",
    "m": "m",
    "meter": "m",
    "inch": "inch",
    "in": "inch",
    "pixel": PIXEL,
    "pixels": PIXEL,
    "px": PIXEL,
    "": PIXEL,
    "dimensionless": PIXEL,
    "none": PIXEL,
}

#: Canonical (and project) unit -> the unit string written to ImageJ TIFF metadata.
IMAGEJ_UNITS = {"Å": "angstrom", "A": "angstrom", "nm": "nm", "µm": "micron", "um": "micron"}


def canonical_unit(unit: Any) -> str:
    """Canonical spelling of a length unit (``"Å"``, ``"nm"``, ``"µm"``, ...) or ``"pixel"``.

    Accepts strings and pint units (napari >= 0.5 ``layer.units``); ``None``
    is ``"pixel"``. An unknown unit is returned as ``str(unit)`` (stripped).
    """
    if unit is None:
        return PIXEL
    text = str(unit).strip()
    return UNIT_ALIASES.get(text, UNIT_ALIASES.get(text.lower(), text))


def angstrom_per(unit: Any) -> float | None:
    """Å per ``unit``; ``None`` for pixels and units that are not lengths."""
    return ANGSTROM_PER_UNIT.get(canonical_unit(unit))


def to_angstrom(value: float, unit: Any) -> float | None:
    """``value`` in ``unit`` converted to Å.

    ``None`` for pixels, unknown units, and a result that is not a positive
    finite length.
    """
    if unit is None:
        return None
    f = angstrom_per(unit)
    if f is None:
        return None
    v = float(value) * f
    return v if math.isfinite(v) and v > 0 else None
