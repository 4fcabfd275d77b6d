"""The Interfaces dock with a real viewer: segment -> paint a correction -> recompute profiles."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from napari_interfaces.apt.synthetic import synthesize

    s = synthesize("layered", size_nm=(10.0, 10.0, 16.0), seed=21)
    files = s.write(tmp_path_factory.mktemp("apt"), stem="lay")
    return files


def test_dock_segment_correct_recompute(make_napari_viewer, dataset, tmp_path):
    from napari_interfaces._hooks.apt_data import read_apt_layers
    from napari_interfaces._widgets.interfaces import InterfacesWidget, saved_labels_path

    viewer = make_napari_viewer()
    for data, kw, kind in read_apt_layers(str(dataset["pos"])):
        getattr(viewer, f"add_{kind}")(data, **kw)
    dock = InterfacesWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Interfaces")
    assert dock.dataset.count() == 1
    dock.method.setCurrentText("iso-concentration")
    job = dock.run(sync=True)
    assert job.state == "done", job.error
    layer = viewer.layers["lay phases"]
    assert int(layer.data.max()) == 2
    before = dock.profile
    assert before is not None and before.total.sum() > 0
    csv = dock.export_csv(str(tmp_path / "prox.csv"))
    assert csv.read_text().startswith("distance_nm,")

    # correction: paint a slab of the reference phase into the other phase
    ref = before.phase
    other = 3 - ref
    data = layer.data
    where = np.argwhere(data == other)
    z0 = int(np.median(where[:, 0]))
    layer.data[z0 - 1 : z0 + 2] = ref
    layer.refresh()
    dock.ref_phase.setValue(ref)  # keep the reference phase fixed
    job = dock.recompute_profiles(sync=True)
    assert job.state == "done", job.error
    after = dock.profile
    assert after is not None and after is not before
    # the painted slab moves atoms of the other phase to distances > 0
    assert not np.array_equal(after.counts, before.counts)
    assert after.counts[after.distance_nm > 0].sum() > before.counts[before.distance_nm > 0].sum()

    # saved with the dataset, reloaded identically; closing the dock keeps the layer
    path = dock.save_labels()
    assert path == saved_labels_path(dataset["pos"]) and path.is_file()
    edited = np.array(layer.data)
    viewer.window.remove_dock_widget(dock)
    assert np.array_equal(viewer.layers["lay phases"].data, edited)
    dock2 = InterfacesWidget(viewer)
    viewer.layers.remove("lay phases")
    reloaded = dock2.reload_saved()
    assert np.array_equal(np.asarray(reloaded.data), edited)
    np.testing.assert_allclose(reloaded.scale, layer.scale)
