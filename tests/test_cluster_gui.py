"""The "Chip communities" dock with a real napari viewer (issue 7)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _ari(a, b):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(np.ravel(a), np.ravel(b))


def test_chip_communities_dock(make_napari_viewer, tmp_path, qtbot):
    from napari_interfaces._hooks.cluster import sample_texture_mosaic
    from napari_interfaces._widgets.cluster import LABELS_NAME, ChipCommunitiesWidget
    from napari_interfaces.cluster.corrections import CorrectionModel

    viewer = make_napari_viewer()
    (img, kw, _), (truth, _, _) = sample_texture_mosaic()
    img, truth = img[:256, :256], truth[:256, :256]
    viewer.add_image(img, name="mosaic")
    w = ChipCommunitiesWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert [w.layers.item(i).text() for i in range(w.layers.count())] == ["mosaic"]
    w.chip.setValue(32)
    w.stride.setValue(16)
    w.merge.setValue(4)
    job = w.run(sync=True)
    assert job.state == "done", job.error
    labels = np.asarray(viewer.layers[LABELS_NAME].data)
    assert labels.shape == (256, 256)
    assert w.table.rowCount() == w.result.n_communities == len(np.unique(labels))
    assert len(w.gallery_pixmaps) > 0
    # corrections: the user repaints the labels to the truth, the dock learns and relabels
    viewer.layers[LABELS_NAME].data = truth.copy()
    job = w.learn(sync=True)
    assert job.state == "done", job.error
    assert _ari(truth, viewer.layers[LABELS_NAME].data) >= 0.7
    js = w.save_model(str(tmp_path / "m.json"))
    classes = CorrectionModel.load(js).classes.tolist()
    assert len(classes) >= 3 and set(classes) <= set(np.unique(truth).tolist())


def test_dock_threaded_run_and_bad_input(make_napari_viewer, qtbot):
    from napari_interfaces._widgets.cluster import LABELS_NAME, ChipCommunitiesWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((48, 48)), name="small")
    w = ChipCommunitiesWidget(viewer)
    job = w.run(sync=True)  # default chip 64 > 48 px: clear error, no crash
    assert job.state == "error" and "smaller than one chip" in w.status.text()
    w.chip.setValue(16)
    w.stride.setValue(16)
    job = w.run()  # background worker
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert job.state == "done"
    assert LABELS_NAME in viewer.layers
