"""The "Paint to segment" dock in a real, shown napari viewer (issue 24), strokes painted by code."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _mosaic():
    from napari_interfaces.cluster.synthetic import texture_mosaic

    img, truth = texture_mosaic((192, 192), n_regions=6, n_classes=3, seed=1)
    truth = np.unique(truth, return_inverse=True)[1].reshape(truth.shape)  # classes 0, 1, 2
    return img.astype(np.float32), truth


def _stroke(layer, truth, cls, value, seed):
    """Paint a short stroke of ``value`` with the brush, inside a region of truth class ``cls``."""
    from scipy import ndimage as ndi

    from napari_interfaces.classify.strokes import random_walk_stroke

    inner = ndi.binary_erosion(truth == cls, iterations=4)
    ys, xs = np.nonzero(inner)
    rng = np.random.default_rng(seed)
    i = rng.integers(len(ys))
    for y, x in random_walk_stroke(inner, (ys[i], xs[i]), 40, rng)[::2]:
        layer.paint((y, x), value)


def test_paint_to_segment_dock_live(make_napari_viewer, tmp_path):
    from napari_interfaces._widgets.classify import LIVE_KEY, PaintToSegmentWidget
    from napari_interfaces.classify.model import PixelClassifier

    viewer = make_napari_viewer(show=True)
    img, truth = _mosaic()
    viewer.add_image(img, name="mosaic", scale=(0.5, 0.5), units="nm")
    w = PaintToSegmentWidget(viewer, sync=True)
    viewer.window.add_dock_widget(w, name="Paint to segment")
    scrib = w.new_scribbles()
    assert w.scribbles.value is scrib
    assert tuple(scrib.scale) == (0.5, 0.5)
    scrib.brush_size = 5
    # one class painted: no prediction yet, the dock says what is missing
    _stroke(scrib, truth, 0, 1, seed=0)
    assert "classes [mosaic]" not in viewer.layers
    assert "two classes" in w.info.value
    for cls in (1, 2):
        _stroke(scrib, truth, cls, cls + 1, seed=cls)
    job = w.latest_job(LIVE_KEY)
    assert job is not None and job.state == "done", job and job.error
    assert w.latest_idle(LIVE_KEY)
    layer = viewer.layers["classes [mosaic]"]
    conf = viewer.layers["confidence [mosaic]"]
    labels = np.asarray(layer.data)
    assert set(np.unique(labels)) <= {1, 2, 3}
    # accurate on the unpainted pixels: the strokes cover < 2 % of the image
    painted = np.asarray(scrib.data) > 0
    assert painted.mean() < 0.02
    acc = (labels[~painted] == truth[~painted] + 1).mean()
    assert acc > 0.7, acc  # chance: 0.33; measured 0.77 with these three strokes
    # result layers carry the source layer's scale and units
    for lay in (layer, conf):
        assert tuple(lay.scale) == (0.5, 0.5)
        assert [str(u) for u in lay.units] == ["nanometer", "nanometer"]
    c = np.asarray(conf.data)
    assert c.shape == img.shape and 0.3 <= c.min() and c.max() <= 1.0
    # another stroke re-uses the cached features and updates the same layer in place
    n_cached = len(w.cache._items)
    _stroke(scrib, truth, 1, 2, seed=7)
    assert len(w.cache._items) == n_cached
    assert viewer.layers["classes [mosaic]"] is layer
    # save (JSON + npz) and apply to another image with twice the pixel size
    js = w.save(tmp_path / "clf.json")
    assert js.is_file() and js.with_suffix(".npz").is_file()
    again = PixelClassifier.load(js)
    assert again.classes.tolist() == [1, 2, 3]
    assert again.settings.pixel_size == pytest.approx(0.5) and again.settings.unit == "nm"
    small = img[::2, ::2]
    other = viewer.add_image(small, name="half", scale=(1.0, 1.0), units="nm")
    w.target.reset_choices()
    w.target.value = other
    job = w.apply()
    assert job.state == "done", job.error
    out = viewer.layers["classes [half]"]
    assert tuple(out.scale) == (1.0, 1.0)
    assert "feature scales x0.5" in " ".join(w.model.extra.get("notes", []) + [str(out.metadata)])
    acc2 = (np.asarray(out.data) == truth[::2, ::2] + 1).mean()
    assert acc2 > 0.7, acc2


def test_paint_to_segment_errors_are_one_line(make_napari_viewer):
    from napari_interfaces._widgets.classify import PaintToSegmentWidget

    viewer = make_napari_viewer()
    w = PaintToSegmentWidget(viewer, sync=True)
    shown = []
    w._show_error = lambda exc, what: shown.append(str(exc))  # type: ignore[method-assign]
    w.add_button  # noqa: B018 - the dock exists without any layer
    with pytest.raises(Exception, match="image"):
        w.run()
    img, _ = _mosaic()
    viewer.add_image(img, name="mosaic")
    w.image.reset_choices()
    scrib = w.new_scribbles()
    scrib.paint((10, 10), 1)
    job = w.run()  # one class only: an InputError shown as a notification, not a traceback
    assert job is None or job.state == "error"
    with pytest.raises(Exception, match="train first"):
        w.apply()


def test_opens_as_a_tab_beside_chip_communities(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window.add_plugin_dock_widget("napari-interfaces", "Chip communities")
    dw, _ = viewer.window.add_plugin_dock_widget("napari-interfaces", "Paint to segment")
    win = viewer.window._qt_window
    qtbot.waitUntil(lambda: bool(win.tabifiedDockWidgets(dw)), timeout=5000)
    assert [d.windowTitle() for d in win.tabifiedDockWidgets(dw)] == [
        "Chip communities (napari-interfaces)"
    ]


def _dock_with_column_strokes(make_napari_viewer):
    """A Paint to segment dock (synchronous) on the mosaic, with strokes of classes 1
    and 2 on every 16th column."""
    from napari_interfaces._widgets.classify import PaintToSegmentWidget

    viewer = make_napari_viewer()
    img, truth = _mosaic()
    viewer.add_image(img, name="mosaic")
    w = PaintToSegmentWidget(viewer, sync=True)
    viewer.window.add_dock_widget(w, name="Paint to segment")
    scrib = w.new_scribbles()
    scrib.data = (np.where(truth < 2, truth + 1, 0) * (np.arange(192) % 16 == 0)).astype(np.uint8)
    return w


def test_feature_scales_form_marks_a_bad_value(make_napari_viewer):
    """The dock's feature scales are ClassifyParams.sigmas: the CLI's bound, marked on the field."""
    w = _dock_with_column_strokes(make_napari_viewer)
    assert w.form["sigmas"].native.placeholderText() == "auto"
    w.form["sigmas"].value = "1, -2"
    with pytest.raises(ValueError, match="^sigmas: must be"):
        w.run()
    assert "border" in w.form["sigmas"].native.styleSheet()
    w.form["sigmas"].value = "1, 4"
    job = w.run()
    assert job.state == "done", job.error
    assert w.model.settings.sigmas == (1.0, 4.0)


def test_feature_set_choice_in_the_dock(make_napari_viewer, tmp_path):
    """The dock's *features* is ClassifyParams.features: auto, basic, vgg, basic+vgg,
    basic+vgg-fast; saved."""
    import json

    pytest.importorskip("torch")
    w = _dock_with_column_strokes(make_napari_viewer)
    assert list(w.form["features"].choices) == [
        None,
        "basic",
        "vgg",
        "basic+vgg",
        "basic+vgg-fast",
    ]
    assert w.form["features"].value is None  # auto: basic
    w.form["features"].value = "basic+vgg"
    job = w.run()
    assert job.state == "done", job.error
    assert w.model.settings.feature_set == "basic+vgg"
    js = w.save(tmp_path / "clf.json")
    assert json.loads(js.read_text())["features"]["feature_set"] == "basic+vgg"
