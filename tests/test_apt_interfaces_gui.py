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


def _open(viewer, dataset):
    from napari_interfaces._hooks.apt_data import read_apt_layers

    for data, kw, kind in read_apt_layers(str(dataset["pos"])):
        getattr(viewer, f"add_{kind}")(data, **kw)


def test_dock_segment_correct_recompute(make_napari_viewer, dataset, tmp_path, monkeypatch):
    from napari_interfaces._widgets.interfaces import InterfacesWidget, saved_labels_path

    viewer = make_napari_viewer(show=True)
    _open(viewer, dataset)
    dock = InterfacesWidget(viewer, sync=True)
    dock_widget = viewer.window.add_dock_widget(dock, name="Interfaces")
    assert dock.dataset.value is not None  # the point-cloud layer is chosen
    for name, widget in dock.params.items():
        assert widget.tooltip, name  # every parameter explains itself
    # the form is the engine's spec: the CLI's voxel bound, a bad axis marked on its field
    from napari_interfaces.apt.workflows import MAX_VOXEL_NM, MIN_VOXEL_NM
    from napari_interfaces.core.errors import ParameterError

    assert (dock.voxel.min, dock.voxel.max) == (MIN_VOXEL_NM, MAX_VOXEL_NM)
    dock.axes.value = "zq"
    with pytest.raises(ParameterError, match="z, y, x"):
        dock.run()
    assert "z, y, x" in dock.axes.tooltip and dock.axes.native.styleSheet()
    dock.axes.value = "zyx"
    dock.method.value = "iso"
    job = dock.run()
    assert job.state == "done", job.error
    layer = viewer.layers["phases [lay]"]
    assert int(layer.data.max()) == 2
    # scale, origin and units from the voxel grid; phases named in the features table
    assert layer.scale.tolist() == [1.0, 1.0, 1.0]
    assert [str(u) for u in layer.units] == ["nanometer"] * 3
    assert list(layer.features["phase"])[0] == "outside the specimen"
    assert list(layer.features["phase"])[1].startswith("phase 1: ")
    assert "Cr at.%" in layer.features and "phase 2: " in dock.legend.value
    # the status keeps the method's message (the phase table is in the legend)
    assert dock.status.value.startswith("iso-concentration: 1 interface(s) between 2 phases")
    assert layer.metadata["method"] == "iso"
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
    dock.ref_phase.value = ref  # keep the reference phase fixed
    job = dock.recompute_profiles()
    assert job.state == "done", job.error
    after = dock.profile
    assert after is not None and after is not before
    # the painted slab moves atoms of the other phase to distances > 0
    assert not np.array_equal(after.counts, before.counts)
    assert after.counts[after.distance_nm > 0].sum() > before.counts[before.distance_nm > 0].sum()
    assert dock.status.value.startswith("iso-concentration: 1 interface(s)")

    # issue 21 #2: proxigram + cylinder profile each get a readable height, legends off the data
    lo, hi = np.asarray(layer.extent.world)
    mid = (lo + hi) / 2
    viewer.add_shapes([np.array([[lo[0] + 1, mid[1], mid[2]], [hi[0] - 1, mid[1], mid[2]]])],
                      shape_type="line", name="axis")  # fmt: skip
    dock.line.reset_choices()
    dock.line.value = viewer.layers["axis"]
    assert dock.recompute_profiles().state == "done" and dock.cylinder is not None
    fig = dock.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert len(fig.axes) == 2
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        assert box.height >= 150, f"{ax.get_title()}: {box.height:.0f} px high"
        legend = ax.get_legend()
        if legend is not None:
            assert not legend.get_window_extent(renderer).overlaps(box), ax.get_title()
    viewer.layers.remove("axis")

    # "Save labels" asks where (suggesting <stem>.phases.tif beside the dataset)
    asked = []
    target = tmp_path / "chosen.phases.tif"

    def ask(self, caption, suggested="", filter=""):  # noqa: A002
        asked.append(suggested)
        return target

    # on the class: magicgui containers treat attribute deletion as removing a widget
    monkeypatch.setattr(InterfacesWidget, "ask_save_path", ask)
    path = dock.save_labels()
    assert asked == [saved_labels_path(dataset["pos"])] and path == target and path.is_file()
    assert not saved_labels_path(dataset["pos"]).exists()  # nothing written silently there
    monkeypatch.setattr(InterfacesWidget, "ask_save_path", lambda *a, **k: None)
    assert dock.save_labels() is None and "not saved" in dock.status.value

    edited = np.array(layer.data)
    viewer.window.remove_dock_widget(dock_widget)
    assert np.array_equal(viewer.layers["phases [lay]"].data, edited)
    dock2 = InterfacesWidget(viewer, sync=True)
    viewer.layers.remove("phases [lay]")
    # no <stem>.phases.tif beside the dataset: the dock asks which file to load
    monkeypatch.setattr(InterfacesWidget, "ask_open_path", lambda self, *a, **k: target)
    job = dock2.reload_saved()
    assert job.state == "done", job.error
    reloaded = dock2.reloaded
    assert np.array_equal(np.asarray(reloaded.data), edited)
    np.testing.assert_allclose(reloaded.scale, layer.scale)
    np.testing.assert_allclose(reloaded.translate, layer.translate)
    # profiles of the reloaded labels equal those before saving
    dock2.ref_phase.value = ref
    assert dock2.recompute_profiles().state == "done"
    np.testing.assert_array_equal(dock2.profile.counts, after.counts)


def test_dock_methods_really_switch(make_napari_viewer, dataset):
    """iso and GMM run their own method (recorded), on the Explorer's grid."""
    from napari_interfaces._widgets.interfaces import InterfacesWidget
    from napari_interfaces.apt.voxelize import voxelize
    from napari_interfaces.apt.workflows import explore

    viewer = make_napari_viewer(show=True)
    _open(viewer, dataset)
    dock = InterfacesWidget(viewer, sync=True)
    runs = {}
    for method in ("iso", "gmm"):
        dock.method.value = method
        assert dock.run().state == "done"
        runs[method] = dock.last_run
        assert runs[method].result.method == method
        assert viewer.layers["phases [lay]"].metadata["method"] == method
    assert dock.status.value.startswith("Gaussian mixture: ")
    # same grid as the APT explorer (and the reader's composition layers)
    ex = explore(dataset["pos"], voxel_size=1.0, spectrum=False)
    assert runs["iso"].grid == ex.grid
    vox = voxelize(runs["iso"].dataset)
    assert vox.grid == ex.grid
    comp_layer = viewer.layers["Cr at.% [lay.pos]"]
    np.testing.assert_allclose(comp_layer.translate, ex.grid.origin)


def test_dock_errors_and_busy(make_napari_viewer, dataset, qtbot):
    from napari_interfaces._widgets.interfaces import InterfacesWidget

    viewer = make_napari_viewer(show=True)
    dock = InterfacesWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Interfaces")
    dock.run_btn.changed.emit(True)  # no dataset: an error on the status line, no job
    assert dock.job is None and "choose a dataset" in dock.status.value
    _open(viewer, dataset)
    dock.dataset.reset_choices()
    dock.method.value = "iso"
    job = dock.run()
    assert not dock.run_btn.enabled and dock.cancel_button.enabled
    assert dock.run() is None  # a second click starts no second job
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.state == "done"
    qtbot.waitUntil(lambda: not dock.busy, timeout=60_000)  # then the profiles
    assert dock.run_btn.enabled and not dock.cancel_button.enabled
    assert dock.profile is not None
