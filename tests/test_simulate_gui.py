"""The "HRTEM simulator" and "Simulated database" docks in a real, shown napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _small(w) -> None:
    for name, value in (("extent", "24"), ("particle_diameter", "12"),
                        ("substrate_thickness", 6.0), ("sampling", 0.2), ("device", "numpy")):  # fmt: skip
        w.params[name].value = value


def test_hrtem_dock_builds_simulates_and_updates_live(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "HRTEM simulator")
    # every parameter explains itself
    assert all(p.tooltip for p in w.params.values()), [
        n for n, p in w.params.items() if not p.tooltip
    ]
    _small(w)
    job = w.build()
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.state == "done", w.status.value
    pts = w.layers["atoms"]
    # projected atoms: 2D points in Å, no meaningless z slider
    assert pts.data.shape == (len(w.scene.atoms), 2) and viewer.dims.ndim == 2
    assert [str(u) for u in pts.units] == ["angstrom", "angstrom"]
    np.testing.assert_allclose(pts.features["z"], w.scene.atoms.positions[:, 2])

    job = w.simulate()
    assert not w.simulate_button.enabled and not w.build_button.enabled
    assert w.simulate() is None  # a second click while running starts nothing
    qtbot.waitUntil(lambda: job.finished, timeout=120_000)
    assert job.state == "done", w.status.value
    assert w.simulate_button.enabled
    img, lab = w.layers["image"], w.layers["labels"]
    assert img.data.shape == lab.data.shape == (120, 120)
    for layer in (img, lab):
        assert tuple(layer.scale) == pytest.approx((0.2, 0.2))
        assert [str(u) for u in layer.units] == ["angstrom", "angstrom"]
        assert layer.metadata["pixel_size"] == pytest.approx(0.2)
    assert lab.data.max() == 1 and viewer.dims.ndim == 2

    before = np.array(img.data)
    calls = []
    real = w.simulation.simulator.exit_waves
    w.simulation.simulator.exit_waves = lambda *a, **k: calls.append(1) or real(*a, **k)
    w.params["defocus"].value = 200.0  # slider -> debounced re-image off the GUI thread
    w.params["dose"].value = 3.0  # 1000 e/Å²
    assert "1000 e/Å²" in w.dose_label.value
    qtbot.waitUntil(lambda: w.latest_idle("image") and w.latest_job("image") is not None,
                    timeout=30_000)  # fmt: skip
    qtbot.wait(50)
    assert w.latest_job("image").state == "done"
    assert not np.allclose(before, img.data)
    assert calls  # re-imaged through the cached exit waves, nothing re-simulated
    assert w.layers["image"] is img  # updated in place
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot[..., :3].std() > 5


def test_hrtem_simulate_rebuilds_a_stale_structure(make_napari_viewer, qtbot):
    """Issue 21 #3: Build + Simulate, change particles / field of view / defect, press
    Simulate only: the dock says the structure is stale and simulates the new scene."""
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "HRTEM simulator")
    w.sync = True
    _small(w)
    w.params["frozen_phonons"].value = 1
    assert w.build().state == "done"
    first = w.scene
    assert not w.structure_stale and "up to date" in w.structure_label.value
    assert w.simulate().state == "done"
    assert w.simulation.scene is first  # unchanged parameters: the built scene is reused
    w.params["n_particles"].value = 2
    w.params["extent"].value = "40"
    assert w.structure_stale and "stale" in w.structure_label.value
    assert w.simulate().state == "done"
    assert w.scene is not first and w.simulation.scene is w.scene
    assert w.scene.info["n_particle_atoms"] > 1.5 * first.info["n_particle_atoms"]
    assert w.layers["image"].data.shape == (200, 200)  # 40 Å at 0.2 Å
    assert not w.structure_stale and "up to date" in w.structure_label.value
    w.params["defects"].value = "twin"
    assert w.structure_stale
    assert w.simulate().state == "done" and not w.structure_stale


def test_hrtem_dock_cancel_and_errors(make_napari_viewer, qtbot, monkeypatch):
    from napari_interfaces._widgets import _dock

    shown = []
    monkeypatch.setattr(_dock, "notify_error", lambda exc, what: shown.append(str(exc)))
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "HRTEM simulator")
    _small(w)
    w.params["sampling"].value = 0.05  # slow enough to cancel
    w.params["frozen_phonons"].value = 4
    job = w.simulate()
    w.cancel()
    assert "cancelling" in w.status.value
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.state == "cancelled" and "cancelled" in w.status.value
    assert w.simulate_button.enabled and w.simulation is None
    # bad input: a napari notification and the status line, no traceback
    w.params["orientation"].value = "1 x 0"
    w.simulate_button.changed.emit(True)
    assert shown and shown[-1].startswith("orientation:")
    assert "orientation" in w.status.value


def test_hrtem_sample_data():
    from napari_interfaces._hooks.simulate import sample_hrtem_particle

    layers = sample_hrtem_particle()
    (img, meta, kind), (lab, lmeta, lkind) = layers
    assert kind == "image" and lkind == "labels"
    assert img.shape == lab.shape == (240, 240)
    assert 0.02 < (lab > 0).mean() < 0.6
    for m in (meta, lmeta):
        assert m["scale"] == pytest.approx((0.15, 0.15)) and m["units"] == ("Å", "Å")
        assert m["metadata"]["pixel_size"] == pytest.approx(0.15)


def test_database_dock_generates_resumes_cancels_and_browses(make_napari_viewer, qtbot, tmp_path,
                                                             monkeypatch):  # fmt: skip
    from napari_interfaces._widgets import _dock

    shown = []
    monkeypatch.setattr(_dock, "notify_error", lambda exc, what: shown.append(str(exc)))
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "Simulated database")
    assert all(p.tooltip for p in w.params.values())
    assert "tiny_synthetic" in w.editor.value
    out = tmp_path / "gui.zarr"
    w.params["out"].value = out
    w.params["n"].value = 3
    job = w.run()
    assert not w.generate_button.enabled and w.run() is None  # one job at a time
    qtbot.waitUntil(lambda: job.finished, timeout=120_000)
    assert job.state == "done", w.status.value
    assert job.result.computed == 3 and "3 samples (3 computed" in w.status.value
    qtbot.waitUntil(lambda: w.latest_idle("sample") and "image [database]" in viewer.layers,
                    timeout=30_000)  # fmt: skip
    img, lab = viewer.layers["image [database]"], viewer.layers["labels [database]"]
    for layer in (img, lab):
        assert tuple(layer.scale) == pytest.approx((0.4, 0.4))  # tiny_synthetic: 0.4 Å/px
        assert [str(u) for u in layer.units] == ["angstrom", "angstrom"]
        assert layer.metadata["pixel_size"] == pytest.approx(0.4)
    first = np.array(img.data)
    w.params["index"].value = 2  # browse: read off the GUI thread
    qtbot.waitUntil(lambda: w.latest_idle("sample") and not np.array_equal(first, img.data),
                    timeout=30_000)  # fmt: skip
    assert w.meta.value.startswith("sample 2:")

    # the same settings again: resumed, nothing recomputed
    job = w.run()
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.result.computed == 0 and job.result.skipped == 3

    # cancel a bigger run: visible cancelled state, the store stays resumable
    w.params["n"].value = 400
    job = w.run()
    w.cancel()
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.state == "cancelled" and "cancelled" in w.status.value
    assert w.generate_button.enabled

    # a YAML alias bomb: one-line notification, no store left behind
    w.editor.value = "a: &a [1, 2]\nb: [*a, *a]\n"
    w.params["out"].value = tmp_path / "bomb.zarr"
    job = w.run()
    qtbot.waitUntil(lambda: job.finished, timeout=30_000)
    assert job.state == "error" and "aliases" in shown[-1] and "aliases" in w.status.value
    assert not (tmp_path / "bomb.zarr").exists()


def test_hrtem_dock_unknown_element_is_one_line(make_napari_viewer, qtbot):
    """Element "Xx" gives a one-line error in the dock's status, not a traceback (issue 21)."""
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "HRTEM simulator")
    _small(w)
    w.params["element"].value = "Xx"
    w.build_button.changed.emit(True)  # refused on the GUI thread: the form marks the field
    assert w.job is None or w.job.finished
    assert "border" in w.params["element"].native.styleSheet()
    status = str(w.status.value)
    assert "Xx" in status and "\n" not in status and "Traceback" not in status, status
    assert w.build_button.enabled  # the dock is usable again
