"""The "Chip communities" dock in a real, shown napari viewer (issues 7, 13, 15)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _ari(a, b):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(np.ravel(a), np.ravel(b))


def _dock(viewer, sync=True):
    from napari_interfaces._widgets.cluster import ChipCommunitiesWidget

    w = ChipCommunitiesWidget(viewer, sync=sync)
    viewer.window.add_dock_widget(w, name="Chip communities")
    return w


def test_chip_communities_dock(make_napari_viewer, tmp_path):
    from napari_interfaces._hooks.cluster import sample_texture_mosaic
    from napari_interfaces.cluster.corrections import CorrectionModel

    viewer = make_napari_viewer(show=True)
    (img, kw, _), (truth, _, _) = sample_texture_mosaic()
    img, truth = img[:256, :256], truth[:256, :256]
    viewer.add_image(img, name="mosaic", scale=(0.5, 0.5), units="nm")
    w = _dock(viewer)
    assert w.image.value.name == "mosaic"
    assert w.pixel_size.value == pytest.approx(5.0)  # 0.5 nm from scale + units, in Å
    # every parameter explains itself
    assert all(p.tooltip and len(p.tooltip) > 20 for p in w.params.values())
    w.chip.value, w.stride.value, w.merge.value = 32, 16, 4
    job = w.run()
    assert job.state == "done", job.error
    layer = viewer.layers["communities [mosaic]"]
    labels = np.asarray(layer.data)
    assert labels.shape == (256, 256)
    assert tuple(layer.scale) == (0.5, 0.5)
    assert [str(u) for u in layer.units] == ["nanometer", "nanometer"]
    n = len(np.unique(labels))
    assert w.table.rowCount() == w.result.n_communities == n == 4
    assert w.status.value.startswith(f"{n} communities")
    assert "chip 32 px" in w.chip_info.value and "(set)" in w.chip_info.value
    assert "weighting auto: texture w" in w.status.value  # the feature weighting is reported
    w.form["feature_weights"].value = "texture=1, intensity=0"  # texture only
    assert w.run().state == "done"
    groups = w.result.settings["feature_weighting"]["groups"]
    assert groups["intensity"]["weight"] == 0 and groups["intensity"]["variance_share"] == 0
    assert len(w.gallery_pixmaps) > 0
    # corrections: the user repaints the labels to the truth, the dock learns and relabels
    layer.data = truth.copy()
    w.learn_with.value = "chip classifier"  # the chip path (the pixel path: test_cluster_gui_form)
    job = w.learn()
    assert job.state == "done", job.error
    corrected = viewer.layers["corrected communities [mosaic]"]
    assert _ari(truth, corrected.data) >= 0.7
    js = w.save_model(str(tmp_path / "m.json"))
    classes = CorrectionModel.load(js).classes.tolist()
    assert len(classes) >= 3 and set(classes) <= set(np.unique(truth).tolist())


def test_auto_chip_results_named_after_source(make_napari_viewer):
    from napari_interfaces.cluster.synthetic import order_disorder_micrograph

    viewer = make_napari_viewer(show=True)
    img, _ = order_disorder_micrograph((256, 256), n_regions=5, seed=0)
    viewer.add_image(img, name="first")
    viewer.add_image(img[::-1].copy(), name="second")
    w = _dock(viewer)
    assert w.chip.native.specialValueText() == "auto" and w.chip.value == 0
    w.image.value = viewer.layers["first"]
    w.merge.value = 3
    assert w.run().state == "done"
    first = np.asarray(viewer.layers["communities [first]"].data).copy()
    assert "(auto" in w.chip_info.value and f"chip {w.result.grid.chip} px" in w.chip_info.value
    w.image.value = viewer.layers["second"]
    assert w.run().state == "done"
    # the second run did not replace the first one's result
    assert np.array_equal(viewer.layers["communities [first]"].data, first)
    assert "communities [second]" in viewer.layers
    assert tuple(viewer.layers["communities [second]"].scale) == (1.0, 1.0)


def test_apply_to_all_open_images_same_ids(make_napari_viewer):
    from napari_interfaces.cluster.synthetic import order_disorder_micrograph

    viewer = make_napari_viewer(show=True)
    img, _ = order_disorder_micrograph((512, 512), n_regions=9, seed=0)
    viewer.add_image(img[:384, :384], name="t0")
    viewer.add_image(img[64:, 64:], name="t1")
    w = _dock(viewer)
    w.image.value = viewer.layers["t0"]
    w.chip.value, w.stride.value, w.merge.value = 32, 16, 3
    w.all_images.value = True
    job = w.run()
    assert job.state == "done", job.error
    a = np.asarray(viewer.layers["communities [t0]"].data)
    b = np.asarray(viewer.layers["communities [t1]"].data)
    assert np.mean(a[64:, 64:] == b[:320, :320]) >= 0.95  # same region, same label
    assert "applied to 1 more image" in w.status.value


def test_dock_errors_and_threaded_run(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.random.default_rng(0).random((48, 48)), name="small")
    w = _dock(viewer, sync=False)
    w.chip.value = 64  # larger than the image: a one-line error, no crash, no job
    w.run_button.changed.emit(True)
    assert "smaller than one chip" in w.status.value
    assert w.run_button.enabled
    w.chip.value, w.stride.value = 16, 16
    job = w.run()  # background worker
    assert not w.run_button.enabled  # no second job while this one runs
    qtbot.waitUntil(lambda: job.finished, timeout=60000)
    assert job.state == "done"
    assert w.run_button.enabled
    assert "communities [small]" in viewer.layers
