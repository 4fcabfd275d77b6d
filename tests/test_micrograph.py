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


# ---------------------------------------------------------------- issue 22: hostile images
def test_one_nan_rule_for_every_image(tmp_path):
    """Non-finite pixels are filled with a warning naming how many; all-NaN is refused."""
    import tifffile

    from napari_interfaces.cluster.images import load_image, normalize
    from napari_interfaces.core.errors import InputError
    from napari_interfaces.io.micrograph import NonFiniteWarning, read_micrograph

    img = np.random.default_rng(0).normal(100, 10, (64, 64)).astype(np.float32)
    bad = img.copy()
    bad[3, 4], bad[10, 10], bad[20, 5] = np.nan, np.inf, -np.inf
    tifffile.imwrite(tmp_path / "bad.tif", bad)
    with pytest.warns(NonFiniteWarning, match="3 of 4,096 pixels"):
        mic = read_micrograph(tmp_path / "bad.tif")
    assert np.isfinite(mic.data).all() and mic.metadata["non_finite_filled"] == 3
    assert mic.data[3, 4] == pytest.approx(np.median(img[np.isfinite(bad)]))
    np.testing.assert_array_equal(mic.data[np.isfinite(bad)], img[np.isfinite(bad)])
    with pytest.warns(NonFiniteWarning):  # cluster reads through the same rule
        assert np.isfinite(load_image(tmp_path / "bad.tif")).all()
    with pytest.warns(NonFiniteWarning):  # and so do arrays handed over directly
        assert np.isfinite(normalize(bad)).all()
    tifffile.imwrite(tmp_path / "nan.tif", np.full((8, 8), np.nan, np.float32))
    for fn in (read_micrograph, load_image):
        with pytest.raises(InputError, match="no finite pixel"):
            fn(tmp_path / "nan.tif")


def test_segment_is_not_blinded_by_one_nan(tmp_path, capsys):
    """Issue 22.4: one NaN pixel gave 0 % foreground; now the result matches the clean image."""
    import json

    import tifffile

    from napari_interfaces.cli import main

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:96]
    img = 1.0 + 0.05 * rng.standard_normal((96, 96))
    disc = (yy - 48) ** 2 + (xx - 48) ** 2 < 20**2
    img[disc] += 0.3 * np.cos(2 * np.pi * xx[disc] / 5.0)
    img = img.astype(np.float32)
    one = img.copy()
    one[7, 7] = np.nan
    tifffile.imwrite(tmp_path / "clean.tif", img)
    tifffile.imwrite(tmp_path / "one.tif", one)
    fg = {}
    for name in ("clean", "one"):
        out = tmp_path / f"out_{name}"
        argv = ["segment", str(tmp_path / f"{name}.tif"), "--out", str(out), "--quiet"]
        assert main([*argv, "--pixel-size", "0.5", "--no-particles"]) == 0
        s = json.loads((out / "summary.json").read_text())["images"][0]
        fg[name] = tifffile.imread(out / s["files"]["labels"]).astype(bool).mean()
    capsys.readouterr()
    assert abs(fg["one"] - fg["clean"]) < 0.01, fg


def test_declared_bytes_are_checked_before_decoding(tmp_path, monkeypatch):
    """Issue 22.6: a small zlib TIFF declaring a big float64 image fails before inflating."""
    import tifffile

    from napari_interfaces.core.errors import SizeLimitError
    from napari_interfaces.io.micrograph import read_micrograph

    tifffile.imwrite(tmp_path / "bomb.tif", np.zeros((1000, 1000)), compression="zlib")
    assert (tmp_path / "bomb.tif").stat().st_size < 100_000  # 8 MB of pixels
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", str(4 << 20))
    with pytest.raises(SizeLimitError, match="bomb.tif"):
        read_micrograph(tmp_path / "bomb.tif")
    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", str(64 << 20))
    assert read_micrograph(tmp_path / "bomb.tif").data.shape == (1000, 1000)


def test_many_pages_zero_width_and_foreign_codecs(tmp_path):
    """Issue 22.9/22.12: only the first page is parsed; empty and undecodable TIFFs are one line."""
    import tifffile

    from napari_interfaces.core.errors import InputError
    from napari_interfaces.io.micrograph import read_micrograph

    with tifffile.TiffWriter(tmp_path / "many.tif") as tw:
        for i in range(3000):
            tw.write(np.full((2, 3), i % 251, np.uint8), contiguous=False)
    mic = read_micrograph(tmp_path / "many.tif")
    assert mic.data.shape == (2, 3) and mic.data[0, 0] == 0
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((5, 0), np.uint8))
    with pytest.raises(InputError, match="zero.tif"):
        read_micrograph(tmp_path / "zero.tif")
    # compression 34925 (LZMA) with data that is not LZMA
    tifffile.imwrite(tmp_path / "lzma.tif", np.ones((16, 16), np.uint8))
    with tifffile.TiffFile(tmp_path / "lzma.tif") as tf:
        tag = tf.pages[0].tags["Compression"]
        where, dtype = tag.valueoffset, tag.dtype
    raw = bytearray((tmp_path / "lzma.tif").read_bytes())
    assert dtype == 3  # SHORT
    raw[where : where + 2] = (34925).to_bytes(2, "little")
    (tmp_path / "lzma.tif").write_bytes(bytes(raw))
    with pytest.raises(InputError, match="lzma.tif: not a readable TIFF"):
        read_micrograph(tmp_path / "lzma.tif")


def test_non_regular_files_and_lying_mrc_headers(tmp_path):
    """Issue 22.9: a FIFO or a device is refused at once; an MRC declaring nz=2e9 too."""
    import os
    import struct

    from napari_interfaces.core.errors import InputError
    from napari_interfaces.io.micrograph import read_micrograph

    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="pipe.tif: is a FIFO"):
        read_micrograph(fifo)
    (tmp_path / "zero.tif").symlink_to("/dev/zero")
    with pytest.raises(InputError, match="character device"):
        read_micrograph(tmp_path / "zero.tif")
    head = bytearray(1024)
    head[0:16] = struct.pack("<4i", 64, 64, 2_000_000_000, 2)
    (tmp_path / "big.mrc").write_bytes(bytes(head) + b"\0" * 16000)
    with pytest.raises(InputError, match="big.mrc: the MRC header declares 64x64x2000000000"):
        read_micrograph(tmp_path / "big.mrc")


def test_napari_reader_refuses_an_empty_tiff(tmp_path):
    import tifffile

    from napari_interfaces._hooks.micrograph import read_layers
    from napari_interfaces.core.errors import InputError, SizeLimitError

    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((0, 7), np.uint8))
    with pytest.raises(InputError, match="empty image") as exc:
        read_layers(str(tmp_path / "zero.tif"))
    assert not isinstance(exc.value, SizeLimitError)  # no lazy fallback for nothing


def test_segment_image_applies_the_rule_to_arrays():
    """Arrays from napari layers get the same rule as files (no silent 0 % foreground)."""
    from napari_interfaces.core.errors import InputError
    from napari_interfaces.io.micrograph import NonFiniteWarning
    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.segment.models import load_model

    model = load_model("default")
    img = np.random.default_rng(0).normal(1, 0.1, (64, 64)).astype(np.float32)
    clean = segment_image(img, model, pixel_size=model.pixel_size, estimate_pixel_size=False)
    img[5, 5] = np.nan
    with pytest.warns(NonFiniteWarning, match="1 of 4,096"):
        one = segment_image(img, model, pixel_size=model.pixel_size, estimate_pixel_size=False)
    assert abs((one.labels > 0).mean() - (clean.labels > 0).mean()) < 0.01
    with pytest.raises(InputError, match="no finite pixel"):
        segment_image(np.full((64, 64), np.nan), model, pixel_size=model.pixel_size)


@pytest.mark.parametrize("writer", ["imagej", "shaped", "ome", "pages"])
def test_a_series_is_never_cut_to_its_first_frame_silently(tmp_path, writer):
    """A stack of frames: read_micrograph says it read only the first (FramesWarning, metadata);
    read_frames and the napari reader give every frame, read on demand, with the pixel size."""
    import tifffile

    from napari_interfaces._hooks.micrograph import read_layers
    from napari_interfaces.io.micrograph import FramesWarning, read_frames, read_micrograph

    rng = np.random.default_rng(0)
    stack = rng.random((4, 24, 20)).astype(np.float32)
    stack[2, 3, 4] = np.nan
    p = tmp_path / "series.tif"
    kw = {"resolution": (1 / 0.5, 1 / 0.5)}  # 0.5 nm per pixel
    if writer == "imagej":
        tifffile.imwrite(p, stack, imagej=True, metadata={"axes": "TYX", "unit": "nm"}, **kw)
    elif writer == "ome":
        tifffile.imwrite(p, stack, ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.5,
                         "PhysicalSizeXUnit": "nm"}, **kw)  # fmt: skip
    elif writer == "pages":  # one page per frame and no series metadata at all
        with tifffile.TiffWriter(p) as tw:
            for frame in stack:
                tw.write(frame, metadata=None, contiguous=False, resolutionunit="CENTIMETER",
                         resolution=(2e7, 2e7))  # fmt: skip
    else:
        tifffile.imwrite(p, stack, photometric="minisblack", resolutionunit="CENTIMETER",
                         resolution=(2e7, 2e7))  # fmt: skip
    with pytest.warns(FramesWarning, match=r"series.tif: a series of 4 frames; only the first"):
        mic = read_micrograph(p)
    assert mic.metadata["frames"] == 4 and np.array_equal(mic.data, stack[0])
    first, frames = read_frames(p)
    assert len(frames) == 4 and frames.shape == (4, 24, 20)
    assert np.array_equal(frames[1], stack[1]) and np.isfinite(frames[2]).all()
    assert frames[2][3, 4] == np.median(stack[2][np.isfinite(stack[2])])  # the one NaN rule
    with pytest.raises(IndexError, match="frame 4 of 4"):
        frames[4]
    ((data, lkw, kind),) = read_layers(str(p))
    assert kind == "image" and data.shape == (4, 24, 20) and lkw["metadata"]["frames"] == 4
    assert np.array_equal(np.asarray(data[3]), stack[3])
    assert lkw["scale"] == pytest.approx((1.0, 5.0, 5.0)) and lkw["units"] == ("pixel", "Å", "Å")
    # one frame: no warning, one frame
    tifffile.imwrite(tmp_path / "one.tif", stack[0])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FramesWarning)
        assert "frames" not in read_micrograph(tmp_path / "one.tif").metadata
    assert len(read_frames(tmp_path / "one.tif")[1]) == 1
    # an image followed by its reduced-resolution copy (a pyramid's page): one frame
    with tifffile.TiffWriter(tmp_path / "pyramid.tif") as tw:
        tw.write(stack[0], metadata=None)
        tw.write(stack[0][::2, ::2], metadata=None, subfiletype=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FramesWarning)
        assert "frames" not in read_micrograph(tmp_path / "pyramid.tif").metadata
