"""One unit table (core/units.py) and micrographs as gridded arrays (pixel size + unit)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_interfaces.core.geometry import Grid, GriddedArray
from napari_interfaces.core.units import (
    ANGSTROM_PER_UNIT,
    IMAGEJ_UNITS,
    PIXEL,
    UNIT_ALIASES,
    canonical_unit,
    to_angstrom,
)
from napari_interfaces.io.micrograph import Micrograph, read_micrograph
from napari_interfaces.io.tiff import write_tiff


def test_every_alias_is_a_length_or_pixel():
    for spelling, canonical in UNIT_ALIASES.items():
        assert canonical == PIXEL or canonical in ANGSTROM_PER_UNIT, spelling
    # every canonical length has its own spelling, and ImageJ names read back
    for unit in ANGSTROM_PER_UNIT:
        assert canonical_unit(unit) == unit
    for unit, imagej in IMAGEJ_UNITS.items():
        assert to_angstrom(1.0, imagej) == to_angstrom(1.0, unit)


@pytest.mark.parametrize(
    ("unit", "angstrom"),
    [
        ("Å", 1.0),
        ("\u212b", 1.0),  # ANGSTROM SIGN
        ("A", 1.0),
        ("angstrom", 1.0),
        ("\\u00c5", 1.0),  # ImageJ's escaped string
        ("nm", 10.0),
        ("NM", 10.0),
        ("nanometre", 10.0),
        ("µm", 1e4),
        ("\u03bcm", 1e4),  # Greek mu
        ("micron", 1e4),
        ("pm", 0.01),
        ("cm", 1e8),
        ("inch", 2.54e8),
    ],
)
def test_lengths_in_angstrom(unit, angstrom):
    assert to_angstrom(2.0, unit) == pytest.approx(2.0 * angstrom)


@pytest.mark.parametrize("unit", [None, "", "pixel", "px", "dimensionless", "furlong"])
def test_pixels_and_unknown_units_have_no_length(unit):
    assert to_angstrom(1.0, unit) is None
    assert to_angstrom(0.0, "nm") is None and to_angstrom(float("nan"), "nm") is None


def test_widgets_use_the_same_table():
    pytest.importorskip("napari")
    from napari_interfaces._widgets import _layers

    assert _layers._ALIASES is UNIT_ALIASES
    assert _layers.to_angstrom(0.5, "nanometer") == pytest.approx(5.0)
    assert _layers.canonical_unit("\u212b") == "Å"


def test_micrograph_carries_its_grid(tmp_path):
    data = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10)
    path = tmp_path / "cal.tif"
    write_tiff(path, data, pixel_size=0.25, unit="nm")  # ImageJ "nm": 2.5 Å per pixel
    mic = read_micrograph(path)
    assert mic.pixel_size == pytest.approx(2.5)
    assert mic.unit == "Å"
    assert mic.grid.spacing == pytest.approx((2.5, 2.5))
    assert (mic.grid.unit, mic.grid.axes) == ("Å", "yx")
    g = mic.as_gridded()
    assert isinstance(g, GriddedArray) and g.data is mic.data
    assert g.metadata["path"] == str(path) and g.metadata["pixel_size_source"] == mic.source
    assert g.grid.layer_kwargs()["units"] == ("Å", "Å")


def test_uncalibrated_micrograph_is_in_pixels():
    mic = Micrograph(np.zeros((4, 5), np.float32))
    assert mic.unit == PIXEL
    assert mic.grid == Grid((0.0, 0.0), (1.0, 1.0), PIXEL, "yx")
    assert Micrograph.from_gridded(mic.as_gridded()).pixel_size is None


def test_micrograph_from_a_gridded_image_in_nm():
    g = GriddedArray(np.ones((6, 6), np.float32), Grid((0.0, 0.0), (0.05, 0.05), "nm", "yx"))
    mic = Micrograph.from_gridded(g)
    assert mic.pixel_size == pytest.approx(0.5)  # Å
    assert mic.source == "grid" and mic.grid.unit == "Å"
