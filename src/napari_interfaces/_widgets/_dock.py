"""One small dock base: a magicgui form, layer choosers, Run/Cancel/status, jobs.

Every dock of the plugin is a :class:`Dock`: a scrollable
``magicgui.widgets.Container`` (so napari's ``add_dock_widget`` and npe2
widget contributions accept it as it is) above a fixed footer, with

* :meth:`Dock.add_param` — an int / float / choice / path / bool / str
  parameter; a tooltip is **required**;
* :meth:`Dock.add_layer_choice` — a layer chooser
  (``create_widget(annotation=napari.layers.Image)``) that follows the viewer
  by itself (insert, remove, reorder, rename) and disconnects when the dock is
  destroyed;
* :meth:`Dock.add_button` — an action button; ``job=True`` buttons are
  disabled while a job runs, so a second click cannot start a second job.
  The dock's first job button (its main action, :attr:`Dock.action_button`)
  goes into the footer; ``footer=True/False`` chooses explicitly;
* a footer **outside the scroll area** (always visible, however long the
  form): the main action, **Cancel**, the running job's progress bar with its
  step, *done/total* and time left, and a status line;
* :meth:`Dock.advanced` — a collapsible group (closed at first) for the
  advanced parameters: ``with self.advanced(): self.add_param(...)``;
  ``add_section(title, collapsed=True)`` makes a whole section collapsible;
* docks opened from the Plugins menu put themselves in tabs beside the
  plugin's other docks in the same area (napari stacks them in one column
  otherwise), so nine docks stay usable at 1920×1080;
* :meth:`Dock.run_job` — runs an engine function through
  :func:`._jobs.run_job` (worker thread, progress bar in napari's activity
  panel), with one behaviour for all docks: *running…* / *done* /
  *cancelled* (visible) / *error* (napari notification — one line for an
  :class:`~napari_interfaces.core.errors.InputError`, with the traceback for
  a bug — plus the status line);
* ``sync=True`` — the testability switch: jobs run in the calling thread;
* :meth:`Dock.link_pixel_size` — a pixel-size parameter filled from the chosen
  layer (``scale`` + ``units``, in Å or nm) that the user can override;
* :meth:`Dock.run_latest` — live previews for sliders: debounced, off the GUI
  thread, newest request wins (cancels the stale one);
* :meth:`Dock.ask_save_path` — ask where to save (never write silently next
  to the source data);
* :meth:`Dock.add_section`, :meth:`Dock.add_label`, :meth:`Dock.add_native`
  (a Qt table / plot inside the form) and :func:`theme_colors` (napari's theme
  colours for matplotlib: no white boxes in the dark theme).

Layer glue lives in :mod:`._layers`: ``pixel_size_from_layer``,
``to_angstrom``/``to_nm``, ``layer_kwargs`` (scale/translate/units from a
Grid, a size + unit, or a source layer), ``result_name`` ("labels [image]")
and ``add_or_update_layer`` (updates the plugin's own result, never a layer
the user painted on: that gets a new "... (2)" layer).

Example (a whole dock in ~30 lines)
-----------------------------------
::

    import napari
    import numpy as np

    from ._dock import Dock
    from ._layers import add_or_update_layer, layer_kwargs, result_name


    def threshold_job(image, level, progress=None):      # engine side: no Qt
        progress.start(1, "thresholding")
        out = (image > level).astype(np.uint8)
        progress.advance()
        return out


    class ThresholdDock(Dock):
        title = "Threshold"

        def __init__(self, napari_viewer=None, sync=False):
            super().__init__(napari_viewer, sync=sync)
            self.image = self.add_layer_choice(
                "image", napari.layers.Image, tooltip="micrograph to threshold")
            self.pixel = self.add_param(
                "pixel_size", 0.0, label="pixel size (Å)", min=0.0, max=1e4, step=0.01,
                tooltip="Å per pixel, read from the layer (scale + units); 0 = unknown")
            self.link_pixel_size(self.image, self.pixel, unit="Å")  # follows the layer
            self.level = self.add_param(
                "level", 0.5, min=0.0, max=1.0, step=0.05, tooltip="foreground above this")
            self.run_button = self.add_button("Threshold", self.run, tooltip="run in background")
            # the first job button is the main action: it sits in the footer beside Cancel

        def run(self):
            layer = self.require_layer(self.image)          # InputError -> status line
            return self.run_job(threshold_job, np.asarray(layer.data), self.level.value,
                                description="thresholding", on_done=lambda r: self._show(r, layer))

        def _show(self, labels, src):
            add_or_update_layer(self.viewer, labels, "labels", name=result_name("labels", src),
                                **layer_kwargs(source_layer=src))
            self.set_status(f"{int(labels.sum())} foreground pixels")

Tests construct the dock directly (``ThresholdDock(viewer, sync=True)``) or
through ``viewer.window.add_plugin_dock_widget("napari-interfaces", "...")``
and call ``dock.run()``; in threaded mode wait with
``qtbot.waitUntil(lambda: dock.job.finished)``.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container, Label, PushButton, create_widget

from ..core.errors import InputError
from ._jobs import Job, notify_error, run_job

#: The file-dialog filter of each kind of file a dock opens (:meth:`Dock.add_file`).
FILE_FILTERS = {
    "point_cloud": "Point clouds (*.pos *.epos *.apt *.ato *.csv *.txt *.npz)",
    "ranges": "Range files (*.rrng *.rng *.env *.RRNG *.RNG *.ENV)",
}

if TYPE_CHECKING:
    import napari

__all__ = ["Collapsible", "Dock", "select_choice", "theme_colors"]

log = logging.getLogger(__name__)

#: Docks can shrink to this and scroll: eight docks stacked beside the canvas fit in 1080 px.
MIN_WIDTH = 300
MIN_HEIGHT = 80
#: A dock widens to its form's minimum width up to this, then scrolls sideways.
MAX_WIDTH = 480
#: Upper default for float/int parameters given without ``max``.
_BIG = 1e9


class Dock(Container):
    """Base of every dock: a scrollable magicgui form with job handling.

    Parameters
    ----------
    napari_viewer : napari.Viewer, optional
        The viewer (npe2 passes it by this parameter name). Layer choosers list
        its layers.
    sync : bool
        Run jobs in the calling thread (tests, scripts).
    title : str, optional
        A bold heading at the top (default: the class attribute ``title``).

    Attributes
    ----------
    viewer : napari.Viewer or None
        The real viewer (unwrapped from napari's ``PublicOnlyProxy``, so layer
        identity holds: ``chooser.value is viewer.layers[name]``).
    job : Job or None
        The last job started by :meth:`run_job`.
    params : dict
        Parameter and layer-chooser widgets by name.
    glue_ms : dict
        Per job description, the longest time its ``on_done`` (adding or
        updating layers) took on the GUI thread, in ms (diagnostics, tests).
    status : magicgui.widgets.Label
        The status line.
    cancel_button : magicgui.widgets.PushButton
    """

    title: str = ""

    def __init__(
        self,
        napari_viewer: napari.Viewer | None = None,
        *,
        sync: bool = False,
        title: str | None = None,
    ) -> None:
        super().__init__(scrollable=True, labels=False)
        # npe2 hands plugin widgets a PublicOnlyProxy of the viewer, which wraps
        # every layer it returns in a new proxy: `layer is other` and id(layer)
        # then fail between two accesses of the same layer. Use the real viewer.
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.sync = sync
        self.job: Job | None = None
        self.params: dict[str, Any] = {}
        #: longest GUI-thread time of each job's ``on_done`` (layer glue), ms
        self.glue_ms: dict[str, float] = {}
        #: this dock's own result layers by role (see :meth:`put_layer`)
        self.own_layers: dict[str, Any] = {}
        self._job_buttons: list[PushButton] = []
        self._layer_choosers: list[Any] = []
        self._connected = False
        heading = title if title is not None else self.title
        if heading:
            head = Label(value=f"<b>{heading}</b>")
            super().append(head)
        # body/sections are unlabelled columns; parameters go into labelled
        # groups inside them, buttons/labels/plots span the full width
        self.body = _plain()
        super().append(self.body)
        # the footer (main action, Cancel, progress, status) lies OUTSIDE the
        # scroll area: always visible, however long the form
        self.footer = _plain()
        self.footer.margins = (6, 2, 6, 4)
        self._footer_row = Container(layout="horizontal", labels=False)
        self._footer_row.margins = (0, 0, 0, 0)
        self.cancel_button = PushButton(text="Cancel")
        self.cancel_button.tooltip = "stop the running job at its next step"
        self.cancel_button.enabled = False
        self.cancel_button.changed.connect(self.cancel)
        self._footer_row.append(self.cancel_button)
        self.footer.append(self._footer_row)
        self._make_progress()
        self.status = Label(value="")
        _wrap(self.status)
        self.footer.append(self.status)
        self.action_button: PushButton | None = None
        self._section = self.body
        self._group: Container | None = None
        self._outer_section: Container | None = None
        self.form_widget.layout().addStretch(1)  # extra height below the form, not inside it
        self._outer = _make_outer(self)
        self._apply_min_size()
        self._fitter = _FitWidth(self)
        self.native.installEventFilter(self._fitter)
        self._connect_viewer()
        _warm_progress(self.viewer)
        # Disconnect viewer events when the Qt widget goes away.
        ref = weakref.ref(self)
        self.native.destroyed.connect(lambda *_: (d := ref()) is not None and d._disconnect())

    @property
    def native(self) -> Any:  # type: ignore[override]
        """The QWidget napari docks: the scrollable form above the fixed footer.

        magicgui's ``native`` of a scrollable container is the inner widget,
        which napari's ``add_dock_widget`` would take out of its scroll area.
        """
        outer = self.__dict__.get("_outer")
        return outer if outer is not None else self.root_native_widget

    @property
    def scroll_area(self) -> Any:
        """The QScrollArea holding the form (not the footer)."""
        return self.root_native_widget

    @property
    def form_widget(self) -> Any:
        """The inner QWidget (inside the scroll area)."""
        return self._widget._mgui_get_native_widget()

    # -- form building -------------------------------------------------------
    def append(self, widget: Any, full_width: bool = False) -> None:  # type: ignore[override]
        """Add a widget to the form (above the Cancel/status footer).

        By default it becomes a labelled row (its ``label`` on the left);
        ``full_width=True`` spans the dock (buttons, text, plots).
        """
        if full_width:
            self._section.append(widget)
            self._group = None
            return
        if self._group is None:
            self._group = Container(labels=True, label="")
            self._group.margins = (0, 0, 0, 0)
            self._section.append(self._group)
        self._group.append(widget)

    def add_section(self, title: str, *, collapsed: bool | None = None) -> Container:
        """Start a new titled group; later parameters and buttons go into it.

        ``collapsed=True``/``False`` makes it a collapsible group (closed/open
        at first) whose title is a toggle, like :meth:`advanced`.
        """
        self.end_advanced()
        if collapsed is not None:
            group = Collapsible(title, expanded=not collapsed)
            super().insert(len(self), group.box)
            self._apply_min_size()
            self._section = group.content
            self._group = None
            return group.content
        box = _plain()
        box.append(Label(value=f"<b>{title}</b>", label=""))
        super().insert(len(self), box)  # below the other sections (the footer is outside)
        self._apply_min_size()
        self._section = box
        self._group = None
        return box

    def advanced(self, title: str = "Advanced", *, expanded: bool = False) -> Collapsible:
        """A collapsible group (closed by default) inside the current section.

        Later parameters go into it until :meth:`end_advanced` or the next
        :meth:`add_section`; used as a context manager (``with
        self.advanced(): ...``) it ends by itself. Returns the
        :class:`Collapsible` (``.expanded`` opens or closes it).
        """
        self.end_advanced()
        group = Collapsible(title, expanded=expanded)
        self._section.append(group.box)
        self._outer_section = self._section
        self._section = group.content
        self._group = None
        group._dock = weakref.ref(self)
        self.__dict__.setdefault("collapsibles", []).append(group)
        return group

    def end_advanced(self) -> None:
        """Parameters go back to the section that holds the open :meth:`advanced` group."""
        if self._outer_section is not None:
            self._section = self._outer_section
            self._outer_section = None
            self._group = None

    def fit_width(self) -> None:
        """Widen the dock to its form (up to ``MAX_WIDTH``) so no horizontal scroll bar."""
        scroll = self.root_native_widget
        bar = scroll.verticalScrollBar().sizeHint().width()
        need = self.form_widget.minimumSizeHint().width() + bar + 2 * scroll.frameWidth() + 2
        need = max(need, self.footer.native.minimumSizeHint().width())
        width = int(min(MAX_WIDTH, max(MIN_WIDTH, need)))
        scroll.setMinimumWidth(width)
        outer = self.__dict__.get("_outer")
        if outer is not None:  # the docked widget: napari's dock must give it this width
            outer.setMinimumWidth(width)

    def _apply_min_size(self) -> None:
        """Small minimum size + scroll bars: several docks fit on one screen."""
        from qtpy.QtCore import Qt

        scroll = self.root_native_widget
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setMinimumWidth(MIN_WIDTH)
        scroll.setMinimumHeight(MIN_HEIGHT)
        outer = self.__dict__.get("_outer")
        if outer is not None:
            outer.setMinimumWidth(MIN_WIDTH)

    def add_param(
        self,
        name: str,
        default: Any,
        *,
        tooltip: str,
        label: str | None = None,
        min: float | None = None,  # noqa: A002 - magicgui's option names
        max: float | None = None,  # noqa: A002
        step: float | None = None,
        choices: Sequence[Any] | Callable[..., Any] | None = None,
        mode: str | None = None,
        filter: str | None = None,  # noqa: A002
        widget_type: str | None = None,
        annotation: Any = None,
        decimals: int | None = None,
        on_change: Callable[..., Any] | None = None,
        **options: Any,
    ) -> Any:
        """Add a parameter widget and return it (read ``.value``).

        Parameters
        ----------
        name : str
            Identifier (``self.params[name]``).
        default : int, float, bool, str, Path or choice
            Initial value; its type picks the widget (SpinBox, FloatSpinBox,
            CheckBox, LineEdit, FileEdit) unless ``choices`` gives a ComboBox.
        tooltip : str
            Required: what the parameter does, its unit and its effect.
        label : str, optional
            Shown text (default: ``name`` with spaces).
        min, max, step : float, optional
            Numeric range (``max`` defaults to 1e9 rather than magicgui's 999).
        choices : sequence or callable, optional
            ComboBox choices (values or ``(text, value)`` pairs; a callable
            ``f(widget) -> list`` is re-evaluated by ``reset_choices``). The
            ``default`` may be a value or a shown text; when it is neither, the
            first choice is selected.
        mode : str, optional
            For paths: ``"r"`` (open file), ``"w"`` (save file), ``"d"`` (folder).
        filter : str, optional
            File dialog filter for paths, e.g. ``"*.tif *.tiff"``.
        widget_type : str, optional
            Override the magicgui widget (``"Slider"``, ``"FloatSlider"``, ...).
        annotation : type, optional
            Override the type (e.g. ``Path`` with a ``None`` default).
        decimals : int, optional
            Digits shown for floats (default: enough for ``default``, at least 3).
        on_change : callable, optional
            Connected to the widget's ``changed`` signal.
        **options
            Further magicgui options.
        """
        if not tooltip:
            raise ValueError(f"parameter {name!r} needs a tooltip")
        opts: dict[str, Any] = dict(options)
        if choices is not None:
            opts["choices"] = choices
            widget_type = widget_type or "ComboBox"
        ann = annotation if annotation is not None else type(default)
        if ann is type(None):
            ann = str
        if isinstance(default, Path) or mode is not None:
            ann = Path
            opts["mode"] = mode or "r"
            if filter:
                opts["filter"] = filter
        if ann in (int, float) and choices is None:
            lo = 0 if min is None else min
            hi = max if max is not None else (_BIG if ann is float else 2**31 - 1)
            opts["min"], opts["max"] = lo, hi
            if step is not None:
                opts["step"] = step
            elif ann is float:
                opts["step"] = _default_step(default)
        if widget_type is not None:
            opts["widget_type"] = widget_type
        widget = create_widget(
            **({} if choices is not None else {"value": default}),
            annotation=ann,
            name=name,
            label=label if label is not None else name.replace("_", " "),
            options=opts,
        )
        if choices is not None:
            select_choice(widget, default)
        widget.tooltip = tooltip
        if ann is float and choices is None and hasattr(widget.native, "setDecimals"):
            # enough digits for small pixel sizes (magicgui derives 2 from the step)
            widget.native.setDecimals(decimals if decimals is not None else _decimals(default))
            widget.value = default
        if on_change is not None:
            widget.changed.connect(on_change)
        self.params[name] = widget
        self.append(widget)
        return widget

    def add_file(
        self,
        name: str,
        kind: str,
        *,
        tooltip: str,
        label: str | None = None,
        on_change: Callable[..., Any] | None = None,
    ) -> Any:
        """Add an (empty) chooser of a file to read, of one ``kind`` of :data:`FILE_FILTERS`.

        Parameters
        ----------
        name, tooltip, label, on_change
            As for :meth:`add_param`.
        kind : {"point_cloud", "ranges"}
            Which file dialog filter to offer.
        """
        return self.add_param(
            name, Path(), mode="r", filter=FILE_FILTERS[kind], tooltip=tooltip, label=label,
            on_change=on_change,
        )  # fmt: skip

    def add_layer_choice(
        self,
        name: str,
        layer_type: type,
        *,
        tooltip: str,
        label: str | None = None,
        nullable: bool = False,
        filter: Callable[[Any], bool] | None = None,  # noqa: A002
        on_change: Callable[..., Any] | None = None,
    ) -> Any:
        """Add a layer chooser for ``layer_type`` (e.g. ``napari.layers.Image``).

        The list follows the viewer (layers inserted, removed, reordered,
        renamed) and keeps the current choice while that layer exists.
        ``filter(layer)`` narrows the list (e.g. 2D images only).
        """
        if not tooltip:
            raise ValueError(f"layer chooser {name!r} needs a tooltip")
        ref = weakref.ref(self)

        def _choices(_widget: Any = None) -> list[tuple[str, Any]]:
            dock = ref()
            viewer = dock.viewer if dock is not None else None
            if viewer is None:
                return []
            return [
                (layer.name, layer)
                for layer in viewer.layers
                if isinstance(layer, layer_type) and (filter is None or filter(layer))
            ]

        widget = create_widget(
            annotation=layer_type,
            name=name,
            label=label if label is not None else name.replace("_", " "),
            options={"choices": _choices, "nullable": nullable},
        )
        widget.tooltip = tooltip
        if on_change is not None:
            widget.changed.connect(on_change)
        self.params[name] = widget
        self._layer_choosers.append(widget)
        self.append(widget)
        widget.reset_choices()
        return widget

    def add_button(
        self,
        text: str,
        callback: Callable[[], Any],
        *,
        tooltip: str,
        job: bool = True,
        footer: bool | None = None,
    ) -> PushButton:
        """Add a button calling ``callback()``.

        ``job=True``: the button starts a job, so it is disabled while any job
        of this dock runs. Errors raised by the callback itself (e.g. an
        :class:`InputError` for a missing layer) are shown like job errors.

        ``footer``: put the button in the footer beside **Cancel** (outside the
        scroll area, always visible). By default (``None``) the dock's first
        job button goes there: it is the dock's main action
        (:attr:`action_button`); other buttons stay where they are added.
        """
        button = PushButton(text=text, label="")
        button.tooltip = tooltip
        ref = weakref.ref(self)

        def _clicked(*_: Any) -> None:
            dock = ref()
            if dock is None:
                return
            try:
                callback()
            except Exception as exc:  # shown to the user
                dock._show_error(exc, text)

        button.changed.connect(_clicked)
        if job:
            self._job_buttons.append(button)
        if footer is None:
            footer = job and self.action_button is None
        if footer:
            self._footer_row.insert(len(self._footer_row) - 1, button)  # before Cancel
            if self.action_button is None:
                self.action_button = button
        else:
            self.append(button, full_width=True)
        return button

    def add_label(self, text: str = "") -> Label:
        """Add a read-only text line (word-wrapped) to the form."""
        lab = Label(value=text, label="")
        _wrap(lab)
        self.append(lab, full_width=True)
        return lab

    def add_native(self, qwidget: Any) -> Container:
        """Add a plain Qt widget (table, plot canvas, gallery) to the form."""
        box = _plain()
        box.native.layout().addWidget(qwidget)
        self.append(box, full_width=True)
        return box

    # -- layers ---------------------------------------------------------------
    def link_pixel_size(self, chooser: Any, param: Any, unit: str = "Å") -> None:
        """Fill ``param`` with the chosen layer's pixel size in ``unit``.

        Read from the layer's ``scale`` + ``units`` (see
        :func:`._layers.pixel_size_from_layer`) whenever the choice changes;
        0 when the layer records no physical size. The user may then override
        the value. Call once after creating both widgets.
        """
        from ._layers import pixel_size_from_layer, to_angstrom, to_nm

        def _fill(*_: Any) -> None:
            layer = chooser.value
            if layer is None:
                return
            size, u = pixel_size_from_layer(layer)
            if size is None:
                param.value = 0.0
                return
            param.value = to_angstrom(size, u) if unit == "Å" else to_nm(size, u)

        chooser.changed.connect(_fill)
        _fill()

    def require_layer(self, chooser: Any, what: str | None = None) -> Any:
        """The chooser's layer, or raise an :class:`InputError` naming it."""
        layer = chooser.value
        if layer is None:
            raise InputError(f"choose {what or chooser.label} first")
        return layer

    def reset_choices(self, *_: Any) -> None:
        """Refresh every layer chooser and combo box (napari calls this too)."""
        try:
            super().reset_choices()
        except RuntimeError:  # the Qt widgets are gone
            self._disconnect()

    def _connect_viewer(self) -> None:
        if self.viewer is None or self._connected:
            return
        ev = self.viewer.layers.events
        for name in ("inserted", "removed", "reordered", "renamed"):
            emitter = getattr(ev, name, None)
            if emitter is not None:
                emitter.connect(self.reset_choices)
        self._connected = True
        _watch_scale_bar(self.viewer)

    def _disconnect(self) -> None:
        """Drop every viewer connection (also napari's own reset_choices ones)."""
        if self.viewer is None:
            return
        ev = self.viewer.layers.events
        for name in ("inserted", "removed", "reordered", "renamed"):
            emitter = getattr(ev, name, None)
            if emitter is not None:
                try:
                    emitter.disconnect(self.reset_choices)
                except (ValueError, RuntimeError, TypeError):
                    pass
        self._connected = False

    # -- jobs -----------------------------------------------------------------
    def put_layer(self, key: str, data: Any, kind: str, **kwargs: Any) -> Any:
        """Show ``data`` as this dock's own layer ``key`` (a role, e.g. ``"image"``).

        The layer this dock made for ``key`` earlier is updated in place (data,
        scale, translate, units, metadata) while it is still in the viewer and
        the user has not painted on it, even if the user renamed it; otherwise
        :func:`._layers.add_or_update_layer` adds one (never over user edits).
        """
        from ._layers import add_or_update_layer, mark_written, was_edited

        layer = self.own_layers.get(key)
        if layer is not None and layer in self.viewer.layers and not was_edited(layer):
            for attr in ("scale", "translate", "units"):
                if attr in kwargs:
                    setattr(layer, attr, kwargs[attr])
            layer.metadata.update(kwargs.get("metadata") or {})
            layer.data = data
            mark_written(layer)
        else:
            layer = add_or_update_layer(self.viewer, data, kind, **kwargs)
        self.own_layers[key] = layer
        return layer

    @property
    def busy(self) -> bool:
        """Whether a job of this dock is running."""
        return self.job is not None and not self.job.finished

    def set_status(self, text: str) -> None:
        """Show ``text`` on the dock's status line."""
        self.status.value = text
        self.status.tooltip = text

    def run_job(
        self,
        func: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
        description: str = "",
        **kwargs: Any,
    ) -> Job | None:
        """Run ``func(*args, progress=..., **kwargs)`` as this dock's job.

        Returns ``None`` (and changes nothing) while another job of this dock
        runs. ``on_done(result)`` runs on the main thread; an exception in it
        is shown like a job error. Progress appears in napari's activity panel.
        """
        if self.busy:
            self.set_status(f"busy: {self.job.description or 'a job'} is still running")
            return None
        desc = description or getattr(func, "__name__", "job")
        self._set_running(True)
        self.set_status(f"{desc}…")
        self._progress_start(desc)

        def _done(result: Any) -> None:
            self._set_running(False)
            self.set_status(f"{desc}: done")
            if on_done is not None:
                t0 = time.perf_counter()
                try:
                    on_done(result)
                except Exception as exc:  # shown to the user
                    self._show_error(exc, desc)
                ms = (time.perf_counter() - t0) * 1e3
                self.glue_ms[desc] = max(ms, self.glue_ms.get(desc, 0.0))
                log.debug("%s: result shown in %.0f ms on the GUI thread", desc, ms)

        def _error(exc: BaseException) -> None:
            self._set_running(False)
            self._show_error(exc, desc)
            if on_error is not None:
                on_error(exc)

        def _cancel() -> None:
            self._set_running(False)
            self.set_status(f"{desc}: cancelled")
            if on_cancel is not None:
                on_cancel()

        job = run_job(
            func,
            *args,
            on_done=_done,
            on_error=_error,
            on_cancel=_cancel,
            description=desc,
            sync=self.sync,
            on_progress=self._progressed,
            **kwargs,
        )
        self.job = job
        return job

    # -- progress in the dock ------------------------------------------------
    def _make_progress(self) -> None:
        from qtpy.QtWidgets import QProgressBar

        bar = QProgressBar()
        bar.setTextVisible(True)
        bar.setMaximumHeight(18)
        bar.setVisible(False)
        self.progress_bar = bar
        self.progress_text = Label(value="")
        _wrap(self.progress_text)
        self.progress_text.native.setVisible(False)
        box = _plain()
        box.native.layout().addWidget(bar)
        self.footer.append(box)
        self.footer.append(self.progress_text)
        self._progress_t0 = 0.0

    def _progress_start(self, desc: str) -> None:
        try:
            self._progress_t0 = time.perf_counter()
            self.progress_bar.setRange(0, 0)  # busy until the engine says how much
            self.progress_bar.setVisible(True)
            self.progress_text.value = desc
            self.progress_text.native.setVisible(True)
        except RuntimeError:
            pass

    def _progressed(self, done: int, total: Any, step: str) -> None:
        """Engine progress → the dock's bar, step and time left (main thread)."""
        bar = self.progress_bar
        elapsed = time.perf_counter() - self._progress_t0
        text = step or (self.job.description if self.job is not None else "")
        if total:
            bar.setRange(0, int(total))
            bar.setValue(int(min(done, total)))
            text += f" ({done}/{total})"
            if 0 < done < total and elapsed > 0.5:
                text += f", {_duration(elapsed * (total - done) / done)} left"
        else:
            bar.setRange(0, 0)
        self.progress_text.value = text

    def _progress_end(self) -> None:
        try:
            self.progress_bar.setVisible(False)
            self.progress_text.native.setVisible(False)
        except RuntimeError:
            pass

    def run_latest(
        self,
        key: str,
        func: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        delay_ms: int = 150,
        **kwargs: Any,
    ) -> None:
        """Live preview: run ``func`` off the GUI thread, newest request wins.

        For sliders that recompute (defocus, dose, slab position): calls within
        ``delay_ms`` are merged (debounce); a request while the previous one of
        the same ``key`` still runs cancels that one and runs after it. These
        jobs do not disable the Run buttons and show no progress bar; errors go
        to the status line and a notification like other jobs.
        """
        from qtpy.QtCore import QTimer

        slots = self.__dict__.setdefault("_latest", {})
        slot = slots.get(key)
        if slot is None:
            timer = QTimer()
            timer.setSingleShot(True)
            slot = {"timer": timer, "job": None, "pending": None}
            slots[key] = slot
            timer.timeout.connect(lambda: self._start_latest(key))
        slot["pending"] = (func, args, kwargs, on_done)
        if self.sync:
            self._start_latest(key)
            return
        slot["timer"].start(delay_ms)

    def _start_latest(self, key: str) -> None:
        slot = self.__dict__["_latest"][key]
        job = slot["job"]
        if job is not None and not job.finished:
            job.cancel()  # its end (cancelled/done) restarts us
            return
        if slot["pending"] is None:
            return
        func, args, kwargs, on_done = slot["pending"]
        slot["pending"] = None

        def _finished(*_: Any) -> None:
            if slot["pending"] is not None:
                self._start_latest(key)

        def _done(result: Any) -> None:
            if on_done is not None and slot["pending"] is None:
                try:
                    on_done(result)
                except Exception as exc:  # shown to the user
                    self._show_error(exc, key)
            _finished()

        def _error(exc: BaseException) -> None:
            self._show_error(exc, key)
            _finished()

        slot["job"] = run_job(
            func,
            *args,
            on_done=_done,
            on_error=_error,
            on_cancel=_finished,
            description=key,
            sync=self.sync,
            show_progress=False,
            **kwargs,
        )

    def latest_job(self, key: str) -> Job | None:
        """The last job started by :meth:`run_latest` for ``key`` (tests)."""
        slot = self.__dict__.get("_latest", {}).get(key)
        return None if slot is None else slot["job"]

    def latest_idle(self, key: str) -> bool:
        """Whether no :meth:`run_latest` request for ``key`` is pending or running."""
        slot = self.__dict__.get("_latest", {}).get(key)
        if slot is None:
            return True
        job = slot["job"]
        return (
            slot["pending"] is None
            and not slot["timer"].isActive()
            and (job is None or job.finished)
        )

    def ask_save_path(
        self,
        caption: str,
        suggested: str | Path = "",
        filter: str = "",  # noqa: A002
    ) -> Path | None:
        """Ask where to save (napari's own Save dialog style); ``None`` if cancelled.

        Tests monkeypatch this method (a modal dialog would block).
        """
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, caption, str(suggested), filter)
        return Path(path) if path else None

    def cancel(self, *_: Any) -> None:
        """Ask the running job to stop; the status says so at once."""
        if self.busy:
            self.job.cancel()
            self.set_status(f"{self.job.description}: cancelling…")

    def _set_running(self, running: bool) -> None:
        if not running:
            self._progress_end()
        for b in self._job_buttons:
            try:
                b.enabled = not running
            except RuntimeError:  # widget deleted
                pass
        try:
            self.cancel_button.enabled = running
        except RuntimeError:
            pass

    def _show_error(self, exc: BaseException, what: str) -> None:
        try:
            self.set_status(
                f"error: {exc}" if isinstance(exc, InputError) else f"error ({what}): {exc}"
            )
        except RuntimeError:
            pass
        notify_error(exc, what)


_WARMED: set[int] = set()


def _watch_scale_bar(viewer: Any) -> None:
    """Turn napari's scale bar on when a layer with physical units is (or gets) open."""
    from ._layers import show_scale_bar_if_physical

    if getattr(viewer, "_napari_interfaces_scale_watch", False):
        return
    try:
        viewer._napari_interfaces_scale_watch = True
        ref = weakref.ref(viewer)
        viewer.layers.events.inserted.connect(lambda *_: show_scale_bar_if_physical(ref()))
        show_scale_bar_if_physical(viewer)
    except Exception:  # a convenience only
        log.debug("scale bar watch failed", exc_info=True)


def _warm_progress(viewer: Any) -> None:
    """Make and close one progress bar when the first dock opens in a viewer.

    napari builds its activity-panel widgets on the first ``progress`` bar
    (~0.3 s on the GUI thread with software OpenGL); paying that while the
    dock opens keeps it out of the first job.
    """
    if viewer is None or id(viewer) in _WARMED:
        return
    _WARMED.add(id(viewer))
    from qtpy.QtCore import QTimer

    def _warm() -> None:
        try:
            from napari.utils import progress

            progress(total=0, desc="").close()
        except Exception:  # an optimisation only
            log.debug("progress warm-up failed", exc_info=True)

    QTimer.singleShot(0, _warm)


def _wrap(label: Label) -> None:
    """Word-wrapped text that takes the dock's full width (not a narrow column)."""
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setMinimumWidth(10)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)


def _plain() -> Container:
    """An unlabelled, margin-less column."""
    box = Container(labels=False, label="")
    box.margins = (0, 0, 0, 0)
    return box


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 5 s"``, ``"1 h 2 min"``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


class Collapsible:
    """A titled group whose title is a toggle (▸ closed / ▾ open).

    Attributes
    ----------
    box : magicgui.widgets.Container
        The whole group (title toggle + content), to add to a form.
    content : magicgui.widgets.Container
        Where the group's widgets go.
    toggle : QToolButton
    """

    def __init__(self, title: str, expanded: bool = False) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QToolButton

        self._dock: Any = None
        self.title = title
        self.box = _plain()
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setChecked(expanded)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolTip(f"show or hide the {title.lower()} parameters")
        self.box.native.layout().addWidget(self.toggle)
        self.content = _plain()
        self.content.margins = (12, 0, 0, 0)
        self.box.append(self.content)
        self.toggle.toggled.connect(self._set)
        self._set(expanded)

    def _set(self, on: bool) -> None:
        from qtpy.QtCore import Qt

        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.content.native.setVisible(bool(on))

    @property
    def expanded(self) -> bool:
        """Whether the group is open."""
        return self.toggle.isChecked()

    @expanded.setter
    def expanded(self, value: bool) -> None:
        self.toggle.setChecked(bool(value))

    def __enter__(self) -> Collapsible:
        return self

    def __exit__(self, *exc: Any) -> None:
        dock = self._dock() if self._dock is not None else None
        if dock is not None:
            dock.end_advanced()


#: Qt property marking the outer widget of a :class:`Dock` (for tabifying).
_DOCK_MARK = "napari_interfaces_dock"


def _make_outer(dock: Dock) -> Any:
    """The widget napari docks: the scroll area (stretching) above the footer."""
    from qtpy.QtWidgets import QSizePolicy, QVBoxLayout

    outer = _outer_class()()
    outer._dock_ref = weakref.ref(dock)  # no reference cycle Qt <-> Python
    layout = QVBoxLayout(outer)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(dock.root_native_widget, 1)
    layout.addWidget(dock.footer.native, 0)
    outer.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
    outer.setProperty(_DOCK_MARK, True)
    return outer


_OUTER: list[type] = []


def _outer_class() -> type:
    """QWidget subclass of a Dock's outer widget (made once, Qt imported lazily)."""
    if _OUTER:
        return _OUTER[0]
    from qtpy.QtCore import QEvent, QTimer
    from qtpy.QtWidgets import QWidget

    class _Outer(QWidget):
        _dock_ref: Any = None
        _tabified = False

        @property
        def _magic_widget(self) -> Any:
            """napari's ``QtViewerDockWidget.inner_widget()`` returns the Dock."""
            return self._dock_ref() if self._dock_ref is not None else None

        def event(self, ev: Any) -> bool:
            if not self._tabified and ev.type() == QEvent.Type.ParentChange:
                ref = weakref.ref(self)
                QTimer.singleShot(0, lambda: (o := ref()) is not None and _tabify(o))
            return super().event(ev)

    _OUTER.append(_Outer)
    return _Outer


def _tabify(outer: Any) -> None:
    """Put a newly docked plugin dock in a tab beside this plugin's other docks.

    napari's Plugins menu stacks docks in one column (about 80 px each with
    nine open); tabs give each dock the full height, its form and footer
    visible when raised.
    """
    from qtpy.QtWidgets import QDockWidget, QMainWindow

    try:
        dw = outer.parentWidget()
    except RuntimeError:  # deleted
        return
    while dw is not None and not isinstance(dw, QDockWidget):
        dw = dw.parentWidget()
    if dw is None:
        return
    win = dw.parentWidget()
    if not isinstance(win, QMainWindow) or dw.isFloating():
        return
    outer._tabified = True
    area = win.dockWidgetArea(dw)
    for other in win.findChildren(QDockWidget):
        if other is dw or other.isFloating() or win.dockWidgetArea(other) != area:
            continue
        w = other.widget()
        if w is not None and w.property(_DOCK_MARK) and not other.isHidden():
            win.tabifyDockWidget(other, dw)
            dw.show()
            dw.raise_()
            return


class _FitWidth:
    """Event filter: fit the dock's width to its form when it is first shown."""

    def __new__(cls, dock: Dock) -> Any:
        from qtpy.QtCore import QEvent, QObject

        class _Filter(QObject):
            def __init__(self) -> None:
                super().__init__()
                self._dock = weakref.ref(dock)

            def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt API
                if event.type() in (QEvent.Type.Show, QEvent.Type.Polish):
                    d = self._dock()
                    if d is not None:
                        d.fit_width()
                return False

        return _Filter()


def select_choice(widget: Any, value: Any) -> bool:
    """Select ``value`` in a ComboBox: a choice value, else a choice's shown text.

    Returns whether it was found (otherwise the selection is unchanged).
    """
    if value is None:
        return False
    try:
        widget.value = value
        return True
    except (ValueError, KeyError, TypeError):
        pass
    native = widget.native
    for i in range(native.count()):
        if native.itemText(i) == str(value):
            native.setCurrentIndex(i)
            return True
    return False


def theme_colors(viewer: Any = None) -> dict[str, str]:
    """napari's current theme colours for plots (no white boxes in the dark theme).

    Returns ``{"background", "foreground", "text", "primary", "highlight"}`` as
    ``#rrggbb`` strings; use them for a matplotlib figure's face, axes and text.
    """
    from napari.settings import get_settings
    from napari.utils.theme import get_theme

    theme_id = get_settings().appearance.theme
    if theme_id == "system":
        theme_id = "dark"
    try:
        theme = get_theme(theme_id)
    except (KeyError, ValueError):
        theme = get_theme("dark")
    out = {}
    for key in ("background", "foreground", "text", "primary", "highlight", "canvas"):
        colour = getattr(theme, key, None)
        if colour is not None:
            out[key] = colour.as_hex() if hasattr(colour, "as_hex") else str(colour)
    return out


def _decimals(value: float) -> int:
    """Digits after the point needed to show ``value`` (3 to 6)."""
    text = f"{abs(float(value)):.6f}".rstrip("0")
    digits = len(text.split(".")[1]) if "." in text else 0
    return int(min(6, max(3, digits)))


def _default_step(value: float) -> float:
    v = abs(float(value))
    if v == 0:
        return 0.01
    import math

    return 10.0 ** (math.floor(math.log10(v)) - 1)
