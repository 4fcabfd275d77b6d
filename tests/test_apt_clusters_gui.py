"""The APT cluster-analysis dock with a real viewer: run -> Points coloured by cluster + table."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_dock_shows_clusters_as_points_with_table(make_napari_viewer, tmp_path, monkeypatch):
    from napari_interfaces._widgets.apt_clusters import AptClustersDock
    from napari_interfaces.apt.synthetic import synthesize_particles
    from napari_interfaces.io.apt_pointcloud import write_pos
    from napari_interfaces.io.ranges import write_rrng

    s = synthesize_particles(
        "clusters", size_nm=(12, 12, 16), seed=35, n_particles=3, solutes_per_cluster=(30, 50)
    )
    pos = write_pos(tmp_path / "c.pos", s.cloud)
    write_rrng(tmp_path / "c.rrng", s.ranges)  # found beside the cloud
    viewer = make_napari_viewer(show=True)
    dock = AptClustersDock(viewer, sync=True)
    viewer.window.add_dock_widget(dock, name="APT clusters")
    for name, widget in dock.params.items():
        assert widget.tooltip, name
    dock.file.value = pos
    dock.solutes.value = "Cu Ni"
    dock.dmax.value = 0.7
    dock.order.value = 1
    dock.nmin.value = 11
    job = dock.run()
    assert job.state == "done", job.error
    layer = viewer.layers["clusters [c]"]
    ids = np.asarray(layer.features["cluster"])
    assert set(ids.tolist()) == {1, 2, 3}
    assert [str(u) for u in layer.units] == ["nanometer"] * 3
    assert dock.table.rowCount() == 3 and dock.table.columnCount() == 8
    assert "3 clusters" in dock.status.value and "are clustered" in dock.status.value
    # same cluster -> same colour
    fc = np.asarray(layer.face_color)
    assert np.allclose(fc[ids == 1], fc[ids == 1][0])
    # save: folder with the four files
    out = tmp_path / "res"
    monkeypatch.setattr(AptClustersDock, "ask_save_path", lambda self, *a, **k: out)
    dock.save()
    assert sorted(p.name for p in out.iterdir()) == [
        "clusters.csv",
        "labels.npz",
        "nn_check.png",
        "summary.json",
    ]
    # the form is the engine's spec: the CLI's bounds; a bad value is marked on its field
    from napari_interfaces.core.errors import ParameterError

    eff = dock.form["efficiency"]
    assert (dock.dmax.max, dock.order.max, eff.max) == (10.0, 50, 1.0)
    eff.value = 1.0
    with pytest.raises(ParameterError, match=r"must be in \(0, 1\), got 1"):
        dock.run()
    assert eff.native.styleSheet() and "(0, 1)" in eff.tooltip
    dock.form.set(efficiency=None)  # "unknown"
    assert not eff.native.styleSheet() and dock.parameters().efficiency is None
    # defaults ("auto", the lowest value): the engine chooses order, dmax and Nmin, as the CLI
    dock.form.set(dmax=None, order=None, n_min=None)
    assert dock.dmax.native.text() == "auto" and dock.nmin.native.text() == "auto"
    job = dock.run()
    assert job.state == "done", job.error
    assert "chosen from the data" in dock.status.value
    assert not ("0 clusters" in dock.status.value and "are clustered" in dock.status.value)
    # no file: a one-line InputError before any job starts
    from napari_interfaces.core.errors import InputError

    dock.file.value = tmp_path / "missing.pos"
    with pytest.raises(InputError, match="point cloud"):
        dock.run()


def test_dock_fills_inputs_from_open_dataset_and_shows_clusters_on_top(
    make_napari_viewer, tmp_path
):
    """Issue 21.6: file, range file and solutes from the open dataset; readable headers;
    the analysed ions dimmed under the clusters; no Points layer when nothing is found."""
    from napari_interfaces._hooks.apt_data import read_apt_layers
    from napari_interfaces._widgets.apt_clusters import AptClustersDock, default_solutes
    from napari_interfaces.apt.synthetic import synthesize_fecr_clusters
    from napari_interfaces.io.apt_pointcloud import write_pos
    from napari_interfaces.io.ranges import write_rrng

    assert default_solutes(["Si", "Cr", "O"], {"Si": 10, "Cr": 2, "O": 20}) == ["Si", "Cr"]
    assert default_solutes(["Fe", "Cr"]) == ["Cr"]
    s = synthesize_fecr_clusters("dilute", size_nm=(12, 12, 14), seed=51, n_particles=4)
    pos = write_pos(tmp_path / "d.pos", s.cloud)
    write_rrng(tmp_path / "d.rrng", s.ranges)
    viewer = make_napari_viewer(show=True)
    for data, meta, kind in read_apt_layers(str(pos)):
        viewer._add_layer_from_data(data, meta, kind)
    source = [ly for ly in viewer.layers if (ly.metadata or {}).get("apt_source")][0]
    dock = AptClustersDock(viewer, sync=True)
    assert str(dock.file.value) == str(pos)
    assert str(dock.ranges.value) == str(tmp_path / "d.rrng")
    assert dock.solutes.value == "Cr"  # Fe is the matrix
    job = dock.run()
    assert job.state == "done", job.error
    assert dock.result.n_clusters >= 3
    assert viewer.layers[-1] is dock.layer and dock.layer.blending == "translucent_no_depth"
    assert source.opacity < 0.2
    heads = [dock.table.horizontalHeaderItem(j).text() for j in range(dock.table.columnCount())]
    assert heads[:4] == ["Cluster", "Solute atoms", "Atoms", "Guinier radius (nm)"]
    assert "Cr (at.%)" in heads
    # a random solid solution: no clusters, no empty layer, a consistent verdict
    r = synthesize_fecr_clusters("random_dilute", size_nm=(10, 10, 12), seed=52)
    rpos = write_pos(tmp_path / "r.pos", r.cloud)
    write_rrng(tmp_path / "r.rrng", r.ranges)
    n_layers = len(viewer.layers)
    dock.file.value = rpos
    dock.ranges.value = tmp_path / "r.rrng"
    job = dock.run()
    assert job.state == "done", job.error
    assert dock.result.n_clusters == 0 and len(viewer.layers) == n_layers
    assert "no clusters found" in dock.status.value and "are clustered" not in dock.status.value
