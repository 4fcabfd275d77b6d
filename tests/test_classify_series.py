"""Paint to segment, reuse (issue 24 item 1): a trained classifier on a series and a watched
folder, from Python, the CLI and the dock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tifffile

from napari_interfaces.classify.strokes import initial_strokes
from napari_interfaces.classify.workflow import apply_classifier, apply_to_frames, classify_image
from napari_interfaces.cli import main
from napari_interfaces.core.errors import InputError
from napari_interfaces.core.progress import Cancelled, Progress


def _mosaic(n=96, seed=1):
    from napari_interfaces.cluster.synthetic import texture_mosaic

    img, truth = texture_mosaic((n, n), n_regions=6, n_classes=3, seed=seed)
    truth = np.unique(truth, return_inverse=True)[1].reshape(truth.shape)
    return img.astype(np.float32), truth


def _accuracy(labels, truth):
    return float(np.mean(labels == truth + 1))


#: pixel accuracy of a classifier trained on mosaic 1 and applied to mosaics 1-3 (chance 1/3):
#: the default forest + head mixture measured 0.60 / 0.81 on mosaics 2 / 3 (0.61 / 0.82 with the
#: edge smoothing of the tenth round), the forest alone 0.77 / 0.89 (the head adapts to its
#: training image's unpainted pixels; on real micrographs the mixture transfers better, 0.394
#: against 0.367 mean IoU, 0.405 with the edge smoothing: docs/benchmarks.md, ninth and tenth
#: rounds)
TRANSFER = 0.55


@pytest.fixture(scope="module")
def trained():
    img, truth = _mosaic(seed=1)
    return classify_image(img, initial_strokes(truth, seed=0), pixel_size=2.0, unit="nm").model


def test_every_frame_of_a_series_is_labelled_as_on_its_own(trained):
    frames, truths = zip(*(_mosaic(seed=s) for s in (1, 2, 3)))
    stack = np.stack(frames)
    r = apply_to_frames(trained, stack, pixel_size=2.0, unit="nm")
    assert r.labels.shape == r.confidence.shape == stack.shape and r.notes[-1] == "3 frames"
    for i, (f, t) in enumerate(zip(frames, truths)):
        one = apply_classifier(trained, f, pixel_size=2.0, unit="nm")
        assert np.array_equal(r.labels[i], one.labels)
        assert np.allclose(r.confidence[i], one.confidence)
        # the textures of other mosaics are recognised, not only the training one's
        assert _accuracy(r.labels[i], t) > TRANSFER, i
    assert r.pixel_size == 2.0 and r.unit == "nm"


def test_series_cancel_and_bad_shapes(trained):
    stack = np.stack([_mosaic(seed=s)[0] for s in (1, 2, 3)])
    seen = []

    class StopAfterOne(Progress):
        def advance(self, n=1, description=None):
            seen.append(n)
            self.cancel_event.set()
            super().advance(n, description)

    with pytest.raises(Cancelled):
        apply_to_frames(trained, stack, progress=StopAfterOne())
    assert len(seen) == 1  # stopped between frames
    with pytest.raises(InputError, match=r"^a series: expected frames \(n, H, W\)"):
        apply_to_frames(trained, stack[0])


def _write_series(path, frames, pixel_size_nm=2.0):
    tifffile.imwrite(path, np.stack(frames), imagej=True,
                     resolution=(1 / pixel_size_nm, 1 / pixel_size_nm),
                     metadata={"axes": "TYX", "unit": "nm"})  # fmt: skip


def test_cli_apply_to_a_multi_frame_tiff_labels_every_frame(tmp_path, capsys, trained):
    trained.save(tmp_path / "m.json")
    frames, truths = zip(*(_mosaic(seed=s) for s in (2, 3)))
    _write_series(tmp_path / "series.tif", frames)
    assert main(["classify", "--model", str(tmp_path / "m.json"),
                 "--apply-to", str(tmp_path / "series.tif"), "--apply-out", str(tmp_path / "o")]
                ) == 0  # fmt: skip
    lab = tifffile.imread(tmp_path / "o" / "series_labels.tif")
    conf = tifffile.imread(tmp_path / "o" / "series_confidence.tif")
    assert lab.shape == conf.shape == (2, 96, 96)  # not only the first frame
    for i in range(2):
        one = apply_classifier(trained, frames[i], pixel_size=20.0, unit="Å")
        assert np.array_equal(lab[i], one.labels)
    assert "2 frames" in capsys.readouterr().out
    # the labels carry the pixel size (frame index, then y, x)
    from napari_interfaces.io.micrograph import read_micrograph
    from napari_interfaces.io.tiff import read_tiff_grid

    assert read_micrograph(tmp_path / "o" / "series_labels.tif").pixel_size == pytest.approx(20)
    grid = read_tiff_grid(tmp_path / "o" / "series_labels.tif")
    assert grid.axes == "tyx" and grid.spacing[1:] == pytest.approx((20.0, 20.0))
    # Fiji sees frames, not z slices 1 Å apart
    from tifffile import TiffFile

    with TiffFile(tmp_path / "o" / "series_labels.tif") as tf:
        ij, axes = tf.imagej_metadata, tf.series[0].axes
    assert axes == "TYX" and ij["frames"] == 2 and "spacing" not in ij


def test_cli_watch_labels_new_images_and_resumes(tmp_path, capsys, trained):
    trained.save(tmp_path / "m.json")
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (img1, t1), (img2, t2) = _mosaic(seed=2), _mosaic(seed=3)
    tifffile.imwrite(inbox / "a.tif", img1)

    def later():  # written while the watch runs, in two steps (a file still being written)
        time.sleep(0.4)
        data = tifffile.memmap(inbox / ".b.tif.part", shape=img2.shape, dtype=np.float32)
        data[:] = img2
        data.flush()
        del data
        (inbox / ".b.tif.part").rename(inbox / "b.tif")

    writer = threading.Thread(target=later)
    writer.start()
    args = ["classify", "--model", str(tmp_path / "m.json"), "--watch", str(inbox),
            "--apply-out", str(out), "--watch-timeout", "1.5", "--poll", "0.1"]  # fmt: skip
    assert main(args) == 0
    writer.join()
    for stem, t in (("a", t1), ("b", t2)):
        lab = tifffile.imread(out / f"{stem}_labels.tif")
        assert _accuracy(lab, t) > TRANSFER and (out / f"{stem}_confidence.tif").is_file()
    text = capsys.readouterr()
    assert "2 images labelled" in text.out and "watching" in text.err
    # a resumed watch skips what is labelled, and never writes over it without --overwrite
    before = (out / "a_labels.tif").stat().st_mtime_ns
    assert main([*args[:-4], "--watch-timeout", "0.3", "--poll", "0.1", "--json"]) == 0
    text = capsys.readouterr()
    assert "a.tif: already labelled" in text.err and "0 images labelled" in text.err
    assert text.out == ""  # --json: stdout holds only JSON lines (none: nothing new)
    assert (out / "a_labels.tif").stat().st_mtime_ns == before
    assert not [p for p in out.iterdir() if ".tmp" in p.name or p.name.startswith(".")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--apply-out", "{inbox}"], "--apply-out: {inbox} is the watched folder"),
        ([], "--apply-out FOLDER is required with --apply-to/--watch"),
    ],
)
def test_cli_watch_bad_setups_are_one_line(tmp_path, capsys, trained, extra, message):
    trained.save(tmp_path / "m.json")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    extra = [e.format(inbox=inbox) for e in extra]
    rc = main(["classify", "--model", str(tmp_path / "m.json"), "--watch", str(inbox), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message.format(inbox=inbox) in err and err.count("\n") == 1
    rc = main(["classify", "--model", str(tmp_path / "m.json"), "--watch", str(tmp_path / "no"),
               "--apply-out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2 and "--watch " in capsys.readouterr().err


@pytest.mark.gui
def test_dock_applies_to_every_frame_of_a_stack(make_napari_viewer, trained, tmp_path):
    """A series file opened with the plugin's "Open as micrograph" (lazy, every frame) is
    labelled frame by frame by the dock's Apply; the result has the series' scale."""
    from napari_interfaces._widgets.classify import PaintToSegmentWidget
    from napari_interfaces._widgets.open_as import micrograph_layers

    img, truth = _mosaic(seed=1)
    frames, truths = zip(*(_mosaic(seed=s) for s in (2, 3)))
    _write_series(tmp_path / "series.tif", frames, pixel_size_nm=2.0)
    viewer = make_napari_viewer(show=True)
    src = viewer.add_image(img, name="train", scale=(20.0, 20.0), units=("Å", "Å"))
    ((data, kw, kind),) = micrograph_layers(tmp_path / "series.tif")
    stack = viewer.add_image(data, **kw)
    assert stack.ndim == 3 and not isinstance(stack.data, np.ndarray)  # lazy, every frame
    w = PaintToSegmentWidget(viewer, sync=True)
    w.image.value = src
    scrib = w.new_scribbles()
    scrib.data = initial_strokes(truth, seed=0).astype(np.uint8)
    w.scribbles.value = scrib
    assert w.run().state == "done", w.job.error
    assert stack in w.target.choices
    w.target.value = stack
    assert w.apply().state == "done", w.job.error
    out = viewer.layers["classes [series]"]
    assert out.data.shape == (2, 96, 96) and tuple(out.scale) == pytest.approx((1.0, 20, 20))
    for i in range(2):
        assert _accuracy(np.asarray(out.data[i]), truths[i]) > TRANSFER
    assert "2 frames" in out.metadata["pixel_classifier"]["notes"]
