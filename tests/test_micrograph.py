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
    from napari_interfaces.core.errors import InputError

    for name, content in (("junk.tif", b"II*\0garbage"), ("junk.png", b"\x89PNG\r\n\x1a\n")):
        f = tmp_path / name
        f.write_bytes(content)
        with pytest.raises(InputError, match=name):
            read_micrograph(f)


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
    from napari_interfaces.core.errors import InputError

    with pytest.raises(ImportError, match="pip install rosettasciio") as info:
        read_micrograph(p)
    assert isinstance(info.value, InputError)  # one line in the CLI, not a traceback


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


def _bomb(path, side=40000):
    """A tiny BigTIFF whose header declares ``side`` x ``side`` pixels."""
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8), bigtiff=True)
    with tifffile.TiffFile(path, mode="r+") as tf:
        tf.pages[0].tags["ImageWidth"].overwrite(side)
        tf.pages[0].tags["ImageLength"].overwrite(side)
    return path


def test_declared_size_is_checked_before_reading(tmp_path, monkeypatch):
    """Memory bomb: the declared size is refused before anything is allocated."""
    from napari_interfaces.core.errors import SizeLimitError

    monkeypatch.setenv("NAPARI_INTERFACES_MAX_PIXELS", str(10**8))
    bomb = _bomb(tmp_path / "bomb.tif")
    assert bomb.stat().st_size < 8192
    with pytest.raises(SizeLimitError, match=r"bomb.tif: 40000x40000 = 1,600,000,000 pixels"):
        read_micrograph(bomb)
    # PNG/JPEG: the header's size, before decoding
    import imageio.v3 as iio

    monkeypatch.setenv("NAPARI_INTERFACES_MAX_PIXELS", "1000")
    png = tmp_path / "a.png"
    iio.imwrite(png, np.zeros((64, 64), np.uint8))
    with pytest.raises(
        SizeLimitError, match="a.png: 64x64x1 = 4,096 pixels exceeds the limit of 1,000"
    ):
        read_micrograph(png)


def test_big_tiff_reads_lazily(tmp_path, monkeypatch):
    from napari_interfaces.core.errors import SizeLimitError

    img = np.random.default_rng(0).random((300, 200)).astype(np.float32)
    p = tmp_path / "big.tif"
    tifffile.imwrite(p, img, tile=(64, 64), imagej=False, resolution=(1e7, 1e7),
                     resolutionunit="CENTIMETER")  # fmt: skip
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_PIXELS", "1000")
    with pytest.raises(SizeLimitError):
        read_micrograph(p)
    m = read_micrograph(p, lazy=True)
    assert not isinstance(m.data, np.ndarray) and m.data.shape == (300, 200)
    assert float(m.data.mean().compute()) == pytest.approx(float(img.mean()), rel=1e-6)
    assert m.pixel_size == pytest.approx(10.0)
    # the napari reader opens it lazily instead of refusing it
    from napari_interfaces._hooks.micrograph import read_layers

    ((data, kw, kind),) = read_layers(str(p))
    assert kind == "image" and kw["metadata"]["lazy"] and data.shape == (300, 200)
    assert kw["scale"] == pytest.approx((10.0, 10.0)) and kw["units"] == ("Å", "Å")


@pytest.mark.parametrize(
    "resolution, unit, expected",
    [
        (1, "INCH", None),  # 1 dpi: 2.54e8 Å, an image editor's default
        (300, "INCH", None),
        (2000, "INCH", None),  # 1.27e5 Å: coarser than any microscope pixel
        (2540, "INCH", 1e5),  # 10 µm: the coarsest plausible pixel
        (1e7, "CENTIMETER", 10.0),
        (2.54e8, "INCH", 1.0),
        (4e9, "CENTIMETER", 0.025),
    ],
)
def test_resolution_tags_only_when_plausible(tmp_path, resolution, unit, expected):
    p = tmp_path / "r.tif"
    tifffile.imwrite(p, np.zeros((8, 8), np.uint16), resolution=(resolution, resolution),
                     resolutionunit=unit)  # fmt: skip
    m = read_micrograph(p)
    if expected is None:
        assert m.pixel_size is None and m.source == ""
        assert m.metadata["ignored_pixel_size"]["source"] == "tiff resolution"
    else:
        assert m.pixel_size == pytest.approx(expected, rel=1e-6)


def test_plausible_pixel_size_range():
    from napari_interfaces.io.micrograph import plausible_pixel_size

    assert plausible_pixel_size(0.001) and plausible_pixel_size(1e5)
    assert not plausible_pixel_size(1e-4) and not plausible_pixel_size(2.54e8)
    assert not plausible_pixel_size(float("nan")) and not plausible_pixel_size(None)


def test_masks_open_as_labels(tmp_path):
    from napari_interfaces._hooks.micrograph import read_layers

    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 1
    mask[12:18, 20:28] = 2
    p = tmp_path / "mask.tif"
    tifffile.imwrite(p, mask)
    ((data, kw, kind),) = read_layers(str(p))
    assert kind == "labels" and np.array_equal(data, mask)
    # colour annotations over a grey image: one label per pure colour, 0 for grey
    rgb = np.repeat(np.linspace(0, 255, 600).astype(np.uint8).reshape(20, 30, 1), 3, -1)
    rgb[mask == 1] = (0, 0, 255)
    rgb[mask == 2] = (255, 0, 0)
    q = tmp_path / "overlay.tif"
    tifffile.imwrite(q, rgb, photometric="rgb")
    ((data, kw, kind),) = read_layers(str(q))
    assert kind == "labels"
    assert np.array_equal(data > 0, mask > 0) and len(np.unique(data[mask == 1])) == 1
    assert kw["metadata"]["label_colors"][int(data[mask == 1][0])] == [0.0, 0.0, 1.0, 1.0]
    # a real grey micrograph stays an image, with units once it has a pixel size
    img = np.random.default_rng(1).integers(0, 4000, (20, 30)).astype(np.uint16)
    r = tmp_path / "img.tif"
    tifffile.imwrite(r, img, imagej=True, resolution=(5.0, 5.0), metadata={"unit": "nm"})
    ((data, kw, kind),) = read_layers(str(r))
    assert kind == "image" and kw["units"] == ("Å", "Å") and kw["scale"] == pytest.approx((2, 2))


@pytest.mark.shared_data
def test_nasa_mask_is_labels_with_no_absurd_pixel_size(shared_data):
    """The NASA masks carry a 1-dpi resolution tag (2.54e8 Å if believed) and
    blue/red annotations over the grey micrograph."""
    from napari_interfaces._hooks.micrograph import read_layers

    path = shared_data / "micrographs" / "nasa_Super1_test_annot_spot2_0d_0_mask.tif"
    m = read_micrograph(path)
    assert m.pixel_size is None
    assert m.metadata["ignored_pixel_size"]["value_A"] == pytest.approx(2.54e8)
    ((data, kw, kind),) = read_layers(str(path))
    assert kind == "labels" and data.shape == (512, 512) and "scale" not in kw
    counts = np.bincount(data.ravel())
    # pinned: blue (label 1) covers most of the field, red (2) the small particles
    assert len(counts) == 3 and counts[1] > counts[2] > 0
    assert kw["metadata"]["label_colors"] == {1: [0.0, 0.0, 1.0, 1.0], 2: [1.0, 0.0, 0.0, 1.0]}
