"""The plugin's docks open in a real, shown napari viewer and render."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_manifest_is_valid():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-interfaces")
    pm.validate_imports()
    assert pm.name == "napari-interfaces"
    assert any(w.display_name == "System info" for w in pm.contributions.widgets)


def test_info_dock_in_shown_viewer_screenshot(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    dock_widget, widget = viewer.window.add_plugin_dock_widget("napari-interfaces", "System info")
    # A real image so the canvas draws something through OpenGL (Mesa on Xvfb).
    yy, xx = np.mgrid[-64:64, -64:64]
    viewer.add_image(np.exp(-(xx**2 + yy**2) / 800.0).astype(np.float32), colormap="magma")
    widget.refresh()
    qtbot.waitUntil(lambda: widget.job is not None and widget.job.finished, timeout=60_000)
    assert widget.job.state == "done"
    text = widget.text.toPlainText()
    assert "napari-interfaces" in text and "OpenCL" in text

    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.ndim == 3 and shot.shape[2] == 4
    rgb = shot[..., :3].astype(float)
    # not blank: many distinct colours and real contrast (canvas + dock + text)
    assert rgb.std() > 10
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50
    canvas = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    # the Gaussian blob is bright in the middle of the canvas, dark at the corner
    h, w = canvas.shape[:2]
    assert (
        canvas[h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2].mean()
        > canvas[:5, :5].mean() + 50
    )
