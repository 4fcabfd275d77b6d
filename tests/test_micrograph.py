"""Micrograph files: pixel size from TIFF metadata, PNG, the napari reader hook."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_interfaces._hooks.micrograph import get_reader
from napari_interfaces.io.micrograph import read_micrograph, to_angstrom, write_labels_tiff


def test_units():
    assert to_angstrom(0.5, "nm") == 5.0
    assert to_angstrom(1, "µm") == 1e4
    assert to_angstrom(2, "Å") == 2.0
    assert to_angstrom(1, "pixel") is None


def test_tiff_pixel_size_sources(tmp_path):
    img = np.arange(64, dtype=np.uint16).reshape(8, 8)
    # ImageJ: unit + XResolution (pixels per unit)
    p = tmp_path / "ij.tif"
    tifffile.imwrite(p, img, imagej=True, resolution=(1 / 0.02, 1 / 0.02), metadata={"unit": "nm"})
    m = read_micrograph(p)
    assert m.pixel_size == pytest.approx(0.2) and m.source == "imagej"
    assert np.array_equal(m.data, img)
    # OME-XML
    p = tmp_path / "ome.ome.tif"
    tifffile.imwrite(p, img, metadata={"PhysicalSizeX": 0.05, "PhysicalSizeXUnit": "nm"})
    m = read_micrograph(p)
    assert m.pixel_size == pytest.approx(0.5) and m.source == "ome"
    # resolution tags in cm
    p = tmp_path / "cm.tif"
    tifffile.imwrite(p, img, resolution=(1e7, 1e7), resolutionunit="CENTIMETER")
    assert read_micrograph(p).pixel_size == pytest.approx(10.0)
    # 72 dpi is a screen default, not a calibration
    p = tmp_path / "dpi.tif"
    tifffile.imwrite(p, img, resolution=(72, 72), resolutionunit="INCH")
    assert read_micrograph(p).pixel_size is None
    # labels round trip
    q = write_labels_tiff(tmp_path / "labels.tif", (img > 30).astype(np.uint8), pixel_size=0.25)
    m = read_micrograph(q)
    assert m.pixel_size == pytest.approx(0.25) and m.data.max() == 1


def test_png_and_errors(tmp_path):
    import imageio.v3 as iio

    p = tmp_path / "a.png"
    iio.imwrite(p, np.full((5, 6, 3), 7, np.uint8))
    m = read_micrograph(p)
    assert m.data.shape == (5, 6, 3) and m.pixel_size is None and m.gray.shape == (5, 6)
    with pytest.raises(FileNotFoundError):
        read_micrograph(tmp_path / "missing.tif")
    bad = tmp_path / "x.xyz"
    bad.write_text("1")
    with pytest.raises(ValueError, match="unsupported"):
        read_micrograph(bad)


def test_rsciio_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("rsciio"):
            raise ImportError("No module named 'rsciio'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    import importlib

    monkeypatch.setattr(importlib, "import_module", lambda name: fake_import(name))
    p = tmp_path / "a.dm4"
    p.write_bytes(b"\0" * 16)
    with pytest.raises(ImportError, match="pip install rosettasciio"):
        read_micrograph(p)


def test_reader_hook(tmp_path, shared_data):
    p = tmp_path / "ij.tif"
    tifffile.imwrite(
        p,
        np.zeros((8, 8), np.float32),
        imagej=True,
        resolution=(5.0, 5.0),
        metadata={"unit": "nm"},
    )
    reader = get_reader(str(p))
    ((data, kw, kind),) = reader(str(p))
    assert kind == "image" and kw["scale"] == pytest.approx((2.0, 2.0))
    assert kw["metadata"]["pixel_size"] == pytest.approx(2.0)
    assert get_reader(str(tmp_path / "a.pos")) is None
    rgb = shared_data / "micrographs" / "pnnl_LaO.png"
    ((data, kw, kind),) = get_reader(str(rgb))(str(rgb))
    assert data.shape == (790, 787, 3) and kw["rgb"] is True
