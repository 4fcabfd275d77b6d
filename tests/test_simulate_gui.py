"""The "HRTEM simulator" dock in a real napari viewer, and the sample data."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_hrtem_dock_builds_simulates_and_updates_live(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "HRTEM simulator")
    w.extent.setValue(30)
    w.diameter.setValue(16)
    w.substrate.setValue(8)
    w.sampling.setValue(0.15)
    w.build()
    qtbot.waitUntil(lambda: w.job is not None and w.job.finished, timeout=60_000)
    assert w.job.state == "done", w.status.text()
    pts = w.layers["atoms"]
    assert pts.data.shape[1] == 3 and len(pts.data) == len(w.scene.atoms)
    w.simulate()
    qtbot.waitUntil(lambda: w.job.finished, timeout=120_000)
    assert w.job.state == "done", w.status.text()
    img = w.layers["image"]
    lab = w.layers["labels"]
    assert img.data.shape == lab.data.shape == (200, 200)
    assert lab.data.max() == 1
    before = img.data.copy()
    calls = []
    real = w.sim.exit_waves
    w.sim.exit_waves = lambda *a, **k: calls.append(1) or real(*a, **k)
    w.defocus.set_value(200)  # slider -> live update, exit wave reused
    assert not np.allclose(before, img.data)
    w.dose.set_value(3)  # 1000 e/Å²
    assert img.data.std() > before.std() * 0.5
    assert "1000" in w.dose.label.text()
    assert calls  # re-imaged through the cache
    assert w.sim._exit is not None
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot[..., :3].std() > 5


def test_hrtem_sample_data():
    from napari_interfaces._hooks.simulate import sample_hrtem_particle

    layers = sample_hrtem_particle()
    (img, meta, kind), (lab, _, lkind) = layers
    assert kind == "image" and lkind == "labels"
    assert img.shape == lab.shape == (240, 240)
    assert 0.02 < (lab > 0).mean() < 0.6
