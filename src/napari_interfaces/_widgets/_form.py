"""A dock form generated from a workflow spec (:mod:`napari_interfaces.core.spec`).

:class:`SpecForm` adds one widget per field of a spec to a
:class:`~._dock.Dock`: the label carries the unit, the tooltip is the field's
help with its range, a sentinel value (``None`` = "auto", "off") is shown as
its word, and advanced fields go into a collapsible "Advanced" group.
:meth:`SpecForm.spec` reads the widgets into a validated spec; a bad value
raises :class:`~napari_interfaces.core.errors.ParameterError` and the form
marks the field (red outline, the message as its tooltip) until it changes.

Example (inside a dock's ``__init__``)::

    self.form = SpecForm(self, ClusterParams, skip=("pixel_size",))
    ...
    params = self.form.spec(pixel_size=size)  # in run(), on the GUI thread
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.errors import ParameterError
from ..core.spec import Param, Spec

__all__ = ["SpecForm", "special_text", "tooltip"]

_BAD_STYLE = "border: 1px solid #e05050;"


def tooltip(p: Param) -> str:
    """The field's help, with its unit, range and sentinel word."""
    extra = p.unit_and_range()
    if p.none:
        extra.append(f"empty/lowest = {p.none}")
    return f"{p.help} [{'; '.join(extra)}]" if extra else p.help


def _sentinel(p: Param) -> float:
    """The spin-box value that stands for ``None`` (shown as ``p.none``)."""
    if p.lo is None or p.lo > 0 or (p.lo == 0 and p.lo_open):
        return 0
    return p.lo - (p.step or 1)


class SpecForm:
    """The widgets of one spec's dock fields, on a :class:`~._dock.Dock`.

    Parameters
    ----------
    dock : Dock
        Where the widgets go (in its current section).
    spec : Spec subclass
    only, skip : iterable of str, optional
        Show only these fields / leave these out (the dock fills them, e.g.
        the pixel size read from the layer).
    advanced_title : str
        Title of the collapsible group of advanced fields.
    leave_open : bool
        Leave the advanced group open (made even without advanced fields) so
        the dock adds its own advanced widgets to it; the dock then calls
        ``end_advanced()``. One group per dock, not two.
    """

    def __init__(
        self,
        dock: Any,
        spec: type[Spec],
        *,
        only: Iterable[str] | None = None,
        skip: Iterable[str] = (),
        advanced_title: str = "Advanced",
        leave_open: bool = False,
    ) -> None:
        self.dock = dock
        self.spec_type = spec
        self.widgets: dict[str, Any] = {}
        self._params: dict[str, Param] = {}
        only = set(only) if only is not None else None
        skip = set(skip)
        shown = [
            p
            for p in spec.params()
            if p.gui and p.name not in skip and (only is None or p.name in only)
        ]
        for p in [q for q in shown if not q.advanced]:
            self._add(p)
        adv = [p for p in shown if p.advanced]
        self.group = None
        if adv or leave_open:
            self.group = dock.advanced(advanced_title)
            for p in adv:
                self._add(p)
            if not leave_open:
                dock.end_advanced()

    def _add(self, p: Param) -> None:
        dock = self.dock
        kw: dict[str, Any] = {"tooltip": tooltip(p), "label": p.gui_label}
        default = p.default
        if p.choices is not None:
            choices: list[Any] = [(p.choice_text(c), c) for c in p.choices]
            if p.none:
                choices = [(p.none, None), *choices]
            w = dock.add_param(
                p.name, default if default is not None else p.none, choices=choices, **kw
            )
        elif p.kind in (int, float):
            lo = _sentinel(p) if p.none else (p.lo if p.lo is not None else -1e9)
            hi = p.hi if p.hi is not None else (2**31 - 1 if p.kind is int else 1e9)
            value = default if default is not None else lo
            w = dock.add_param(p.name, p.kind(value), min=lo, max=hi, step=p.step, **kw)
            if p.none:
                special_text(w, p.none)
        elif p.kind is bool:
            w = dock.add_param(p.name, bool(default), **kw)
        elif p.kind is Path:
            w = dock.add_param(
                p.name,
                Path(default) if default else None,  # empty, not "."
                mode="r",
                annotation=Path,
                nullable=True,
                **kw,
            )
        else:  # str and tuple: a line edit (tuples as "1, 2, 4")
            text = "" if default is None else default
            if isinstance(text, tuple):
                text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in text)
            w = dock.add_param(p.name, str(text), annotation=str, **kw)
            if p.none:
                w.native.setPlaceholderText(p.none)
        self.widgets[p.name] = w
        self._params[p.name] = p
        w.changed.connect(lambda *_, name=p.name: self._clear(name))

    def __getitem__(self, name: str) -> Any:
        return self.widgets[name]

    def value(self, name: str) -> Any:
        """The field's raw value from its widget (sentinel -> ``None``)."""
        p, w = self._params[name], self.widgets[name]
        v = w.value
        if p.kind in (int, float) and p.choices is None and p.none and v == _sentinel(p):
            return None
        if p.kind is Path:
            return None if v is None or not str(v) or str(v) == "." else Path(v)
        if isinstance(v, str) and p.kind in (str, tuple) and not v.strip():
            return None if p.none or p.kind is tuple else v
        return v

    def values(self) -> dict[str, Any]:
        """Every shown field's raw value."""
        return {name: self.value(name) for name in self.widgets}

    def spec(self, **extra: Any) -> Spec:
        """The validated spec from the widgets plus ``extra`` (fields the dock fills).

        A :class:`ParameterError` marks its field and is raised again.
        """
        values = {**self.values(), **extra}
        try:
            return self.spec_type(**values)
        except ParameterError as exc:
            self.mark(exc.name, exc.reason)
            raise

    def set(self, **values: Any) -> None:
        """Show these values (``None`` = the sentinel)."""
        for name, v in values.items():
            p, w = self._params[name], self.widgets[name]
            if v is None and p.kind in (int, float) and p.choices is None:
                v = _sentinel(p)
            elif isinstance(v, tuple):
                v = ", ".join(map(str, v))
            w.value = v

    def mark(self, name: str, message: str) -> bool:
        """Outline the field in red with ``message`` as its tooltip; False if not shown."""
        w = self.widgets.get(name)
        if w is None:
            return False
        try:
            w.native.setStyleSheet(_BAD_STYLE)
            w.tooltip = f"{message}\n\n{tooltip(self._params[name])}"
            w.native.setFocus()
        except RuntimeError:  # widget deleted
            return False
        return True

    def _clear(self, name: str) -> None:
        w = self.widgets[name]
        try:
            if w.native.styleSheet():
                w.native.setStyleSheet("")
                w.tooltip = tooltip(self._params[name])
        except RuntimeError:
            pass


def special_text(widget: Any, text: str) -> None:
    """Show ``text`` (e.g. "auto", "off") instead of a spin box's minimum value.

    magicgui's integer box (superqt's QLargeIntSpinBox) ignores Qt's
    ``specialValueText``; the line edit is rewritten whenever the value is at
    its minimum.
    """
    native = widget.native
    native.setSpecialValueText(text)
    edit = native.lineEdit()

    def _show(*_: Any) -> None:
        if widget.value == native.minimum() and edit.text() != text:
            edit.setText(text)

    update = getattr(native, "_updateEdit", None)
    if update is not None:

        def _update_edit() -> None:
            update()
            _show()

        native._updateEdit = _update_edit
    widget.changed.connect(_show)
    _show()
