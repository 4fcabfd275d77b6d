"""Segmenting a series of HRTEM frames: every frame, one pixel size, stacks on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_interfaces.segment.inference import segment_image  # noqa: E402
from napari_interfaces.segment.models import load_model, save_model  # noqa: E402
from napari_interfaces.segment.series import segment_frames  # noqa: E402
from napari_interfaces.segment.unet import UNet, UNetConfig  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny.pt"
    save_model(UNet(UNetConfig(width=4)), path, {"pixel_size": 0.5})
    return load_model(path)


@pytest.fixture(scope="module")
def whole_model(tmp_path_factory):
    """Calls every pixel particle (a zero head with a foreground bias): one particle per frame."""
    net = UNet(UNetConfig(width=4))
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0.0, 3.0]))
    path = tmp_path_factory.mktemp("w") / "whole.pt"
    save_model(net, path, {"pixel_size": 0.5})
    return load_model(path)


def _frames(n=3, shape=(40, 48)):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = []
    for i in range(n):  # a bright disc that moves, on noise: frames that differ
        disc = (yy - 20) ** 2 + (xx - 12 - 10 * i) ** 2 < 8**2
        out.append((rng.random(shape) + 3.0 * disc).astype(np.float32))
    return np.stack(out)


@pytest.mark.parametrize("which", ["tiny_model", "whole_model"])
def test_every_frame_is_what_the_single_image_path_gives(which, request):
    model = request.getfixturevalue(which)
    frames = _frames()
    res = segment_frames(frames, model, pixel_size=0.5, particles=True)
    assert res.labels.shape == frames.shape and res.pixel_size == 0.5
    offset = 0
    for i, frame in enumerate(frames):
        one = segment_image(frame, model, pixel_size=0.5, particles=True)
        assert np.array_equal(res.labels[i], one.labels)
        # ids run on through the series: one id, one particle of one frame
        assert np.array_equal(
            res.instances[i], np.where(one.instances > 0, one.instances + offset, 0)
        )
        rows = res.particles["frame"] == i
        assert rows.sum() == len(one.particles) == (which == "whole_model")
        assert np.allclose(res.particles["area_nm2"][rows], one.particles["area_nm2"])
        assert np.array_equal(res.particles["id"][rows], one.particles["id"] + offset)
        offset += len(one.particles)
    assert np.array_equal(res.particles["id"], np.arange(1, offset + 1))
    assert res.summary()["n_particles_per_frame"] == [f.get("n_particles") for f in res.frames]
    assert res.grid.axes == "tyx" and res.grid.spacing == (1.0, 0.5, 0.5)


def test_one_pixel_size_for_the_series(tiny_model):
    """Without a pixel size the first frame decides it; the others are given it."""
    res = segment_frames(_frames(), tiny_model, estimate_pixel_size=False)
    sizes = {f["pixel_size"] for f in res.frames}
    assert sizes == {res.pixel_size} and res.pixel_size_source == "assumed"
    assert [f["pixel_size_source"] for f in res.frames[1:]] == ["given", "given"]


def test_a_series_is_refused_when_it_does_not_fit(tiny_model, monkeypatch):
    from napari_interfaces.core.errors import InputError

    monkeypatch.setenv("NAPARI_INTERFACES_MAX_BYTES", "1000")
    with pytest.raises(InputError, match="3 frames of 40 x 48"):
        segment_frames(_frames(), tiny_model, pixel_size=0.5)
    with pytest.raises(InputError, match="expected frames"):
        segment_frames(np.zeros((4, 4)), tiny_model, pixel_size=0.5)


def test_cli_segments_every_frame_of_a_tiff_series(tiny_model, tmp_path, capsys):
    import warnings

    import tifffile

    from napari_interfaces.cli import main
    from napari_interfaces.io.micrograph import FramesWarning, read_micrograph

    frames = _frames()
    src = tmp_path / "series.tif"
    tifffile.imwrite(src, frames, imagej=True, metadata={"axes": "TYX", "unit": "nm"},
                     resolution=(1 / 0.05, 1 / 0.05))  # 0.05 nm = 0.5 Å per pixel  # fmt: skip
    out = tmp_path / "seg"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FramesWarning)  # not cut to its first frame
        rc = main(["segment", str(src), "--model", str(tiny_model.path), "--out", str(out),
                   "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    entry = json.loads((out / "summary.json").read_text())["images"][0]
    assert entry["frames"] == 3 and entry["shape"] == [3, 40, 48]
    labels = tifffile.imread(out / "series_labels.tif")
    ref = segment_frames(frames, tiny_model, pixel_size=0.5)
    assert np.array_equal(labels, ref.labels)
    assert read_micrograph(out / "series_labels.tif", warn_frames=False).pixel_size == 0.5
    with tifffile.TiffFile(out / "series_particles.tif") as tf:
        assert tf.series[0].axes == "TYX" and tf.imagej_metadata["frames"] == 3
    header = (out / "series_particles.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "frame" and "equivalent_diameter_nm" in header
