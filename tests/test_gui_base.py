"""The dock base (``_widgets._dock``) and layer glue (``_widgets._layers``)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from napari_interfaces.core.errors import InputError
from napari_interfaces.core.progress import as_progress

pytestmark = pytest.mark.gui


# -- layer glue (no viewer needed) ---------------------------------------------
def test_pixel_size_from_layer_reads_scale_and_units():
    from napari.layers import Image, Labels

    from napari_interfaces._widgets._layers import pixel_size_from_layer

    a = Image(np.zeros((4, 4)), scale=(0.125, 0.125), units="angstrom")
    assert pixel_size_from_layer(a) == (0.125, "Å")
    n = Labels(np.zeros((3, 4, 4), int), scale=(0.5, 0.25, 0.2), units=("nm", "nm", "nm"))
    assert pixel_size_from_layer(n) == (0.2, "nm")
    assert pixel_size_from_layer(n, axis=0) == (0.5, "nm")
    um = Image(np.zeros((4, 4)), scale=(0.003, 0.003), units="um")
    size, unit = pixel_size_from_layer(um)
    assert unit == "nm" and size == pytest.approx(3.0)
    # no units: napari's default 'pixel' -> unknown, unless the metadata says
    plain = Image(np.zeros((4, 4)), scale=(0.3, 0.3))
    assert pixel_size_from_layer(plain) == (None, "pixel")
    legacy = Image(np.zeros((4, 4)), metadata={"pixel_size": 0.25})
    assert pixel_size_from_layer(legacy) == (0.25, "Å")
    legacy_nm = Image(np.zeros((4, 4)), metadata={"pixel_size": 0.05, "pixel_size_unit": "nm"})
    assert pixel_size_from_layer(legacy_nm) == (0.05, "nm")
    bad = Image(np.zeros((4, 4)), metadata={"pixel_size": 0.0})
    assert pixel_size_from_layer(bad) == (None, "pixel")


def test_unit_conversions():
    from napari_interfaces._widgets._layers import canonical_unit, to_angstrom, to_nm

    assert to_angstrom(0.2, "nm") == pytest.approx(2.0)
    assert to_angstrom(3.0, "angstrom") == 3.0
    assert to_nm(5.0, "Å") == pytest.approx(0.5)
    assert to_nm(1.0, "µm") == pytest.approx(1000.0)
    assert canonical_unit("Å") == "Å"  # U+212B angstrom sign
    with pytest.raises(InputError, match="pixel"):
        to_nm(1.0, "pixel")


def test_layer_kwargs_from_size_grid_and_source():
    from napari.layers import Image

    from napari_interfaces._widgets._layers import layer_kwargs, pixel_size_from_layer
    from napari_interfaces.core.geometry import Grid

    kw = layer_kwargs(0.125, "angstrom", ndim=2, name="x")
    assert kw == {"scale": (0.125, 0.125), "units": ("Å", "Å"), "name": "x"}
    grid = Grid(origin=(1.0, 2.0, 3.0), spacing=(0.5, 0.5, 1.0), unit="nm")
    kw = layer_kwargs(grid)
    assert kw["scale"] == (0.5, 0.5, 1.0) and kw["translate"] == (1.0, 2.0, 3.0)
    assert kw["units"] == ("nm",) * 3
    src = Image(np.zeros((5, 8, 8)), scale=(2.0, 0.1, 0.1), translate=(0, 5, 6), units="nm")
    kw = layer_kwargs(source_layer=src, ndim=2, metadata={"a": 1})
    assert kw["scale"] == (0.1, 0.1) and kw["translate"] == (5.0, 6.0)
    assert kw["units"] == ("nm", "nm") and kw["metadata"] == {"a": 1}
    # a layer made from these kwargs reads back the same pixel size
    lab = Image(np.zeros((8, 8)), **kw)
    assert pixel_size_from_layer(lab) == (0.1, "nm")


def test_result_names_and_edits_are_kept(make_napari_viewer):
    from napari_interfaces._widgets._layers import add_or_update_layer, result_name

    viewer = make_napari_viewer()
    img = viewer.add_image(np.zeros((8, 8)), name="Au")
    name = result_name("labels", img)
    assert name == "labels [Au]"
    first = add_or_update_layer(viewer, np.zeros((8, 8), np.uint8), "labels", name=name)
    # re-running updates the plugin's own unedited result in place
    again = add_or_update_layer(viewer, np.ones((8, 8), np.uint8), "labels", name=name)
    assert again is first and int(first.data.sum()) == 64
    # the user paints: the next run must not overwrite the edits
    first.paint((2, 2), 2, refresh=True)
    assert 2 in np.unique(first.data)
    third = add_or_update_layer(viewer, np.zeros((8, 8), np.uint8), "labels", name=name)
    assert third is not first and third.name == "labels [Au] (2)"
    assert 2 in np.unique(first.data)
    # a user's own layer of that name is never replaced either
    viewer.add_image(np.zeros((4, 4)), name="mine")
    other = add_or_update_layer(viewer, np.ones((4, 4)), "image", name="mine")
    assert other.name == "mine (2)"


def test_in_place_data_edits_count_as_user_edits(make_napari_viewer):
    """Issue 21 #7: ``layer.data[...] = v; layer.refresh()`` (console, scripts) is an edit:
    a re-run (add_or_update_layer or a dock's put_layer) never overwrites it."""
    from napari_interfaces._widgets._layers import add_or_update_layer, was_edited

    viewer = make_napari_viewer()
    first = add_or_update_layer(viewer, np.zeros((8, 8), np.uint8), "labels", name="labels [x]")
    assert not was_edited(first)
    again = add_or_update_layer(viewer, np.ones((8, 8), np.uint8), "labels", name="labels [x]")
    assert again is first and not was_edited(first)  # the plugin's own rewrite
    first.data[3, 3] = 5
    first.refresh()
    assert was_edited(first)
    third = add_or_update_layer(viewer, np.zeros((8, 8), np.uint8), "labels", name="labels [x]")
    assert third is not first and first.data[3, 3] == 5
    # the same through a dock's own role layer
    dock = _toy_dock_class()(viewer)
    own = dock.put_layer("mask", np.zeros((8, 8), np.uint8), "labels", name="mask [x]")
    assert dock.put_layer("mask", np.ones((8, 8), np.uint8), "labels", name="mask [x]") is own
    own.data[0, 0] = 7
    own.refresh()
    new = dock.put_layer("mask", np.zeros((8, 8), np.uint8), "labels", name="mask [x]")
    assert new is not own and own.data[0, 0] == 7


# -- the dock base ------------------------------------------------------------
def slow(n_steps: int, step_s: float, record: list, progress=None):
    progress = as_progress(progress)
    progress.start(n_steps, "slow work")
    for i in range(n_steps):
        time.sleep(step_s)
        record.append(i)
        progress.advance()
    return len(record)


def _toy_dock_class():
    import napari

    from napari_interfaces._widgets._dock import Dock

    class Toy(Dock):
        title = "Toy"

        def __init__(self, napari_viewer=None, sync=False):
            super().__init__(napari_viewer, sync=sync)
            self.image = self.add_layer_choice(
                "image", napari.layers.Image, tooltip="the image to process"
            )
            self.steps = self.add_param("steps", 5, min=1, max=10_000, tooltip="number of steps")
            self.pixel = self.add_param("pixel_size", 0.125, tooltip="Å per pixel")
            self.method = self.add_param("method", "fft", choices=["fft", "gabor"], tooltip="how")
            self.more = self.add_section("More")
            self.flag = self.add_param("flag", True, tooltip="a switch")
            self.record: list = []
            self.results: list = []
            self.run_button = self.add_button("Run", self.run, tooltip="start")

        def run(self, step_s=0.01):
            self.require_layer(self.image)
            return self.run_job(
                slow,
                self.steps.value,
                step_s,
                self.record,
                description="toy job",
                on_done=self.results.append,
            )

    return Toy


def test_dock_form_tooltips_and_layer_choosers_follow_viewer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    dock = _toy_dock_class()(viewer)
    viewer.window.add_dock_widget(dock, name="toy")
    # every parameter has a tooltip; small floats are not rounded
    assert all(w.tooltip for w in dock.params.values())
    assert dock.pixel.value == 0.125
    assert dock.image.value is None
    a = viewer.add_image(np.zeros((8, 8)), name="a")
    assert dock.image.value is a
    viewer.add_labels(np.zeros((8, 8), int), name="not an image")
    assert [c for c in dock.image.choices] == [a]
    a.name = "renamed"
    assert dock.image.native.currentText() == "renamed"
    viewer.layers.remove(a)
    assert dock.image.value is None
    # a missing layer is an InputError shown in the status line, not a crash
    dock.run_button.clicked.emit()
    assert "choose image" in dock.status.value
    # the scroll area lets the dock shrink
    assert dock.native.minimumWidth() >= 250


def test_dock_job_done_cancelled_and_double_click(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    dock = _toy_dock_class()(viewer)
    viewer.window.add_dock_widget(dock, name="toy")
    viewer.add_image(np.zeros((8, 8)), name="img")

    # a job that finishes
    dock.steps.value = 3
    dock.run_button.clicked.emit()
    qtbot.waitUntil(lambda: dock.job is not None and dock.job.finished, timeout=10_000)
    assert dock.results == [3] and "done" in dock.status.value
    assert dock.run_button.enabled and not dock.cancel_button.enabled

    # a long job: Run disabled, Cancel enabled; a second click starts nothing
    dock.record.clear()
    dock.steps.value = 5000
    dock.run_button.clicked.emit()
    first = dock.job
    assert not first.finished
    assert not dock.run_button.enabled and dock.cancel_button.enabled
    assert dock.run() is None  # programmatic second start is refused too
    assert dock.job is first and "busy" in dock.status.value
    qtbot.waitUntil(lambda: len(dock.record) >= 3, timeout=10_000)
    dock.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: first.finished, timeout=10_000)
    assert first.state == "cancelled"
    assert "cancelled" in dock.status.value
    assert dock.run_button.enabled and not dock.cancel_button.enabled
    assert len(dock.record) < 5000
    assert dock.results == [3]  # the cancelled job delivered nothing


def test_dock_errors_notify_and_show_status(make_napari_viewer, qtbot, monkeypatch):
    from napari_interfaces._widgets import _jobs

    viewer = make_napari_viewer(show=True)
    dock = _toy_dock_class()(viewer)
    seen = []
    monkeypatch.setattr(_jobs, "notify_error", lambda exc, what="": seen.append((exc, what)))
    import napari_interfaces._widgets._dock as dock_mod

    monkeypatch.setattr(dock_mod, "notify_error", lambda exc, what="": seen.append((exc, what)))

    def bad_input(progress=None):
        raise InputError("file.pos: size 17 is not a multiple of 16 bytes")

    def bug(progress=None):
        return [][1]

    job = dock.run_job(bad_input, description="reading")
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert job.state == "error"
    assert dock.status.value == "error: file.pos: size 17 is not a multiple of 16 bytes"
    assert dock.run_job(bug, description="computing") is not None
    qtbot.waitUntil(lambda: dock.job.finished, timeout=10_000)
    assert "IndexError" not in dock.status.value and "computing" in dock.status.value
    assert [type(e) for e, _ in seen] == [InputError, IndexError]
    assert not dock.cancel_button.enabled

    # an exception in on_done (layer glue) is shown too, not lost
    job = dock.run_job(lambda progress=None: 1, on_done=lambda r: 1 / 0, description="glue")
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert isinstance(seen[-1][0], ZeroDivisionError)


def test_notify_error_one_line_for_input_traceback_for_bugs(monkeypatch):
    from napari.utils import notifications

    from napari_interfaces._widgets._jobs import notify_error

    got = []
    monkeypatch.setattr(notifications.notification_manager, "dispatch", got.append)
    notify_error(InputError("bad.tif: no pixel size"), "open")
    try:
        raise KeyError("x")
    except KeyError as exc:
        notify_error(exc, "segment")
    assert got[0].message == "open: bad.tif: no pixel size"
    assert type(got[0]).__name__ == "Notification"
    assert type(got[1]).__name__ == "ErrorNotification"
    assert "KeyError" in got[1].as_html() or "Traceback" in "".join(got[1].as_text())


def test_dock_sync_mode_and_disconnect_on_close(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    Toy = _toy_dock_class()
    dock = Toy(viewer, sync=True)
    viewer.window.add_dock_widget(dock, name="toy")
    viewer.add_image(np.zeros((8, 8)), name="img")
    job = dock.run()
    assert job.state == "done" and dock.results == [5]
    assert all(name != "x" for name in [threading.current_thread().name])
    n_before = len(viewer.layers.events.inserted.callbacks)
    viewer.window.remove_dock_widget(dock.native)
    dock.native.deleteLater()
    QApplication.processEvents()
    qtbot.waitUntil(lambda: len(viewer.layers.events.inserted.callbacks) < n_before, timeout=5000)
    viewer.add_image(np.zeros((4, 4)), name="after close")  # no error from a dead dock


def test_dock_from_npe2_contribution_is_accepted(make_napari_viewer):
    """An npe2 widget command may return a Dock: napari docks its scroll area + footer."""
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    dock = _toy_dock_class()(viewer)
    dw = viewer.window.add_dock_widget(dock, name="toy")
    assert dw.widget() is dock.native
    assert isinstance(dock.scroll_area, QScrollArea)
    assert dock.scroll_area.parentWidget() is dock.native
    # the footer (Cancel, status) is outside the scroll area
    assert not dock.scroll_area.isAncestorOf(dock.cancel_button.native)
    assert dw.inner_widget() is dock


def test_docstring_example_dock_works(make_napari_viewer):
    """The ~30-line example in ``_dock``'s docstring runs as written."""
    import textwrap

    from napari_interfaces._widgets import _dock

    doc = _dock.__doc__
    code = textwrap.dedent(doc.split("::\n", 1)[1].split("\nTests construct", 1)[0])
    code = code.replace("from ._", "from napari_interfaces._widgets._")
    ns: dict = {}
    exec(compile(code, "_dock docstring", "exec"), ns)
    viewer = make_napari_viewer(show=True)
    img = viewer.add_image(
        np.linspace(0, 1, 64).reshape(8, 8), scale=(0.2, 0.2), units="nm", name="mic"
    )
    dock = ns["ThresholdDock"](viewer, sync=True)
    viewer.window.add_dock_widget(dock, name="threshold")
    assert dock.pixel.value == pytest.approx(2.0)  # 0.2 nm read from the layer, shown in Å
    dock.level.value = 0.5
    job = dock.run()
    assert job.state == "done"
    out = viewer.layers["labels [mic]"]
    assert int(out.data.sum()) == int((img.data > 0.5).sum()) == 32
    assert tuple(out.scale) == (0.2, 0.2) and str(out.units[0]) == "nanometer"
    assert dock.status.value == "32 foreground pixels"


def test_link_pixel_size_fills_from_layer_and_user_can_override(make_napari_viewer):
    import napari

    from napari_interfaces._widgets._dock import Dock

    viewer = make_napari_viewer(show=True)
    dock = Dock(viewer, sync=True)
    chooser = dock.add_layer_choice("image", napari.layers.Image, tooltip="image")
    ps = dock.add_param("pixel_size", 0.0, max=1e4, tooltip="Å/px; 0 = unknown")
    dock.link_pixel_size(chooser, ps, unit="Å")
    viewer.add_image(np.zeros((4, 4)), scale=(0.05, 0.05), units="nm", name="nm image")
    assert ps.value == pytest.approx(0.5)
    ps.value = 0.7  # user override sticks until the layer choice changes
    assert ps.value == pytest.approx(0.7)
    viewer.add_image(np.zeros((4, 4)), name="no units")
    chooser.value = viewer.layers["no units"]
    assert ps.value == 0.0


def test_run_latest_debounces_and_newest_wins(make_napari_viewer, qtbot):
    from napari_interfaces._widgets._dock import Dock

    make_napari_viewer()
    dock = Dock(None)
    calls, shown = [], []

    def preview(value, progress=None):
        progress = as_progress(progress)
        progress.start(20)
        calls.append(value)
        for _ in range(20):
            time.sleep(0.005)
            progress.advance()
        return value * 10

    for v in range(5):  # a slider dragged quickly: one run only
        dock.run_latest("preview", preview, v, on_done=shown.append, delay_ms=50)
    qtbot.waitUntil(lambda: dock.latest_idle("preview") and bool(shown), timeout=10_000)
    assert calls == [4] and shown == [40]
    # a request while one runs: the running one is cancelled, the newest shown
    dock.run_latest("preview", preview, 7, on_done=shown.append, delay_ms=0)
    qtbot.waitUntil(
        lambda: dock.latest_job("preview") is not None and calls[-1] == 7, timeout=5000
    )
    dock.run_latest("preview", preview, 8, on_done=shown.append, delay_ms=0)
    qtbot.waitUntil(lambda: dock.latest_idle("preview") and shown[-1] == 80, timeout=10_000)
    assert 70 not in shown or shown.index(70) < shown.index(80)
    assert shown[-1] == 80


def test_choice_default_may_be_a_text_or_missing(make_napari_viewer):
    from napari_interfaces._widgets._dock import Dock, select_choice

    dock = Dock(None)
    pairs = [("default model", "/w/default.pt"), ("tuned", "/w/tuned.pt")]
    by_text = dock.add_param("model", "tuned", choices=pairs, tooltip="model")
    assert by_text.value == "/w/tuned.pt"
    missing = dock.add_param("model2", "gone", choices=lambda w: pairs, tooltip="model")
    assert missing.value == "/w/default.pt"
    assert select_choice(missing, "/w/tuned.pt") and missing.value == "/w/tuned.pt"
    assert not select_choice(missing, "nope") and missing.value == "/w/tuned.pt"


def test_dock_from_plugin_menu_keeps_layer_identity(make_napari_viewer):
    """npe2 passes a PublicOnlyProxy viewer; the Dock unwraps it so `is` works on layers."""
    viewer = make_napari_viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-interfaces", "Segment micrograph")
    assert dock.viewer is viewer
    from napari_interfaces._widgets._layers import add_or_update_layer

    layer = add_or_update_layer(dock.viewer, np.zeros((4, 4), np.uint8), "labels", name="x")
    assert layer is dock.viewer.layers["x"] is viewer.layers["x"]


def test_dock_layout_full_width_rows_and_no_sideways_scrolling(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    dock = _toy_dock_class()(viewer)
    note = dock.add_label("a long explanation " * 10)
    viewer.window.add_dock_widget(dock, name="toy")
    qtbot.wait(50)
    scroll = dock.scroll_area
    assert not scroll.horizontalScrollBar().isVisible()
    form_w = dock.form_widget.width()
    # buttons and text span the dock; parameters are labelled rows
    # the main action sits in the footer beside Cancel, the two span the dock
    assert dock.action_button is dock.run_button
    assert not dock.scroll_area.isAncestorOf(dock.run_button.native)
    assert dock.run_button.native.width() + dock.cancel_button.native.width() > 0.8 * form_w
    assert note.native.width() > 0.8 * form_w
    assert dock.status.native.width() > 0.8 * form_w
    # the section title sits at the left edge, not in the value column
    head = dock.more[0]
    assert "More" in head.value
    assert head.native.mapTo(dock.form_widget, head.native.rect().topLeft()).x() < 30


def test_add_or_update_layer_through_napari_proxy(make_napari_viewer):
    """The viewer npe2 hands to widgets is a PublicOnlyProxy; updating still works."""
    from napari.utils._proxies import PublicOnlyProxy

    from napari_interfaces._widgets._layers import add_or_update_layer

    viewer = make_napari_viewer()
    proxy = PublicOnlyProxy(viewer)
    first = add_or_update_layer(proxy, np.zeros((4, 4), np.uint8), "labels", name="r")
    again = add_or_update_layer(proxy, np.ones((4, 4), np.uint8), "labels", name="r")
    assert again is first and len(viewer.layers) == 1 and int(first.data.sum()) == 16


def test_scale_bar_turns_on_with_physical_units(make_napari_viewer):
    """Issue 21 #7: a layer with physical units turns napari's scale bar on (pixels do not)."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((8, 8)), name="pixels")
    _toy_dock_class()(viewer)
    bar = viewer.canvas.overlays.scale_bar
    assert not bar.visible
    viewer.add_image(np.zeros((8, 8)), name="nm", scale=(0.2, 0.2), units="nm")
    assert bar.visible
    bar.visible = False  # the user hides it: it stays hidden
    viewer.add_image(np.zeros((8, 8)), name="nm2", scale=(0.2, 0.2), units="nm")
    assert not bar.visible


def test_dock_progress_advanced_group_and_footer(make_napari_viewer, qtbot):
    """Issue 21 #2/#7: the job's bar, step and time left show in the dock's footer; an
    Advanced group is collapsed at first; the main action stays outside the scroll area."""
    import threading

    from napari_interfaces._widgets._dock import Dock

    gate = threading.Event()
    seen = []

    def work(progress=None):
        progress.start(4, "step one")
        progress.advance()
        gate.wait(10)
        progress.advance(1, "step two")
        return 1

    class Adv(Dock):
        title = "adv"

        def __init__(self, viewer):
            super().__init__(viewer)
            self.a = self.add_param("a", 1, tooltip="basic")
            with self.advanced() as self.adv:
                self.b = self.add_param("b", 2, tooltip="advanced")
            self.c = self.add_param("c", 3, tooltip="basic again")
            self.go = self.add_button(
                "Go", lambda: self.run_job(work, description="working"), tooltip="go"
            )

    viewer = make_napari_viewer(show=True)
    dock = Adv(viewer)
    viewer.window.add_dock_widget(dock, name="adv")
    qtbot.wait(20)
    assert dock.action_button is dock.go
    assert not dock.scroll_area.isAncestorOf(dock.go.native)
    assert not dock.adv.expanded and not dock.b.native.isVisible()
    assert dock.a.native.isVisible() and dock.c.native.isVisible()
    assert dock.adv.content.native.isAncestorOf(dock.b.native)
    assert not dock.adv.content.native.isAncestorOf(dock.c.native)
    dock.adv.expanded = True
    qtbot.wait(10)
    assert dock.b.native.isVisible()
    dock.go.native.click()
    qtbot.waitUntil(lambda: dock.progress_bar.maximum() == 4, timeout=5000)
    assert dock.progress_bar.isVisible() and dock.progress_bar.value() == 1
    assert "step one (1/4)" in dock.progress_text.value
    seen.append(dock.progress_text.value)
    gate.set()
    qtbot.waitUntil(lambda: dock.job.finished, timeout=5000)
    qtbot.wait(20)
    assert not dock.progress_bar.isVisible()
