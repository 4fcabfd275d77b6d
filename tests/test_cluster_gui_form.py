"""Chip communities dock form (issue 21, item 5): auto/off texts, compact form, file picker,
one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _dock(viewer):
    from napari_interfaces._widgets.cluster import ChipCommunitiesWidget

    w = ChipCommunitiesWidget(viewer, sync=True)
    viewer.window.add_dock_widget(w, name="Chip communities")
    return w


def test_auto_off_texts_compact_form_and_file_picker(make_napari_viewer, qtbot):
    from magicgui.widgets import FileEdit

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.random.default_rng(0).random((128, 128)), name="img")
    w = _dock(viewer)
    # the boxes say what 0 means
    assert w.chip.native.lineEdit().text() == "auto"
    assert w.stride.native.lineEdit().text() == "auto"
    assert w.merge.native.lineEdit().text() == "off"
    w.chip.value = 32
    assert w.chip.native.lineEdit().text() == "32"
    assert w.form.spec().chip == 32
    w.chip.value = 0
    assert w.form.spec().chip is None and w.form.spec().merge_to is None
    # a file picker for the weights
    assert isinstance(w.weights, FileEdit)
    assert w.form.spec().weights is None
    # basic parameters visible, advanced ones collapsed: the form fits a 1080 px screen
    assert not w.form.group.expanded and not w.k.native.isVisible()
    h = w.form_widget.sizeHint().height()
    assert h < 950, h  # was 1131 px (1350 px at 1920x1080 before the collapsible group)
    w.form.group.expanded = True
    qtbot.wait(10)
    assert w.k.native.isVisible()


def test_form_is_generated_from_the_spec_and_marks_bad_fields(make_napari_viewer):
    """The same bounds as the CLI: a bad value marks its field, one line in the status."""
    from napari_interfaces.cluster.pipeline import ClusterParams

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((128, 128)), name="img")
    w = _dock(viewer)
    p = ClusterParams.param_of("chip")
    assert "[4, 4096]" in w.chip.tooltip and w.chip.native.maximum() == p.hi
    assert w.form["resolution"].label.startswith("resolution")
    w.form["resolution"].value = 0.0  # the CLI's --resolution: must be in (0, 100]
    w.run_button.native.click()
    assert "resolution: must be in (0, 100], got 0" in w.status.value
    assert "border" in w.form["resolution"].native.styleSheet()
    w.form["feature_weights"].value = "texture=-1"
    w.form["resolution"].value = 1.0
    w.run_button.native.click()
    assert "feature_weights: texture: the weight must be ≥ 0" in w.status.value
    assert "border" in w.form["feature_weights"].native.styleSheet()


def test_resnet50_without_weights_is_one_line(make_napari_viewer, monkeypatch):
    import napari_interfaces._widgets._dock as dockmod

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((128, 128)), name="img")
    w = _dock(viewer)
    shown = []
    monkeypatch.setattr(dockmod, "show_error_notification", None, raising=False)
    orig = w._show_error
    w._show_error = lambda exc, what: (
        shown.append((type(exc).__name__, str(exc))),
        orig(exc, what),
    )
    w.features.value = "resnet50"
    w.run_button.native.click()
    assert shown, "no error shown"
    kind, msg = shown[-1]
    assert kind in ("InputError", "ParameterError", "WeightsError", "MissingWeightsError"), kind
    assert "\n" not in msg and "weights" in msg.lower()


def test_learn_from_corrections_pixel_classifier_spreads(make_napari_viewer, tmp_path):
    """Paint a new label on a few pixels of the communities layer: it spreads (issue 24)."""
    from scipy import ndimage as ndi

    from napari_interfaces.classify.model import PixelClassifier
    from napari_interfaces.classify.strokes import random_walk_stroke
    from napari_interfaces.cluster.synthetic import texture_mosaic

    viewer = make_napari_viewer(show=True)
    img, truth = texture_mosaic((192, 192), n_regions=6, n_classes=3, seed=1)
    truth = np.unique(truth, return_inverse=True)[1].reshape(truth.shape)
    viewer.add_image(img, name="mosaic", scale=(2.0, 2.0), units="nm")
    w = _dock(viewer)
    w.chip.value, w.stride.value, w.merge.value = 24, 12, 2
    assert w.run().state == "done"
    layer = w.result_layer()
    prop = np.asarray(layer.data).copy()
    # the community holding most of texture 2 also holds another texture: paint a new label
    new = int(prop.max()) + 1
    lab, _ = ndi.label(ndi.binary_erosion(truth == 2, iterations=4))
    big = np.bincount(lab.ravel())[1:].argmax() + 1
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(lab == big)
    i = rng.integers(len(ys))
    layer.brush_size = 4
    for y, x in random_walk_stroke(lab == big, (ys[i], xs[i]), 50, rng)[::2]:
        layer.paint((y, x), new)
    # and a stroke of a new label for each other texture (napari records only pixels whose
    # label changes, so these are new labels too)
    for t in (0, 1):
        inner = ndi.binary_erosion(truth == t, iterations=4)
        ys, xs = np.nonzero(inner)
        j = rng.integers(len(ys))
        for y, x in random_walk_stroke(inner, (ys[j], xs[j]), 30, rng)[::2]:
            layer.paint((y, x), new + 1 + t)
    assert w.painted.sum() < 0.03 * truth.size
    w.learn_confident.value = False  # exactly the painted pixels
    job = w.learn()
    assert job.state == "done", job.error
    out = viewer.layers["corrected communities [mosaic]"]
    got = np.asarray(out.data) == new
    iou = (got & (truth == 2)).sum() / (got | (truth == 2)).sum()
    assert iou > 0.5, iou  # from < 3 % of the pixels painted
    assert tuple(out.scale) == (2.0, 2.0)
    assert "edited pixels" in w.status.value
    js = w.save_model(str(tmp_path / "px.json"))
    assert new in PixelClassifier.load(js).classes.tolist()
    assert PixelClassifier.load(js).kind == "forest+mlp"  # the default: forest + head
    # the neural head alone and the forest alone learn from the same strokes
    for choice, kind in (
        ("neural pixel classifier", "mlp"),
        ("forest pixel classifier", "random_forest"),
    ):
        w.learn_with.value = choice
        job = w.learn()
        assert job.state == "done", job.error
        assert w.model.kind == kind
        got = np.asarray(out.data) == new
        iou_head = (got & (truth == 2)).sum() / (got | (truth == 2)).sum()
        print(f"new-label IoU: forest + head {iou:.3f}, {choice} {iou_head:.3f}")
        assert iou_head > 0.5, (kind, iou_head)
