"""The "System info" dock: versions, OpenCL devices, torch device, folders.

It runs the (slow-ish) device discovery on a worker via :func:`._jobs.run_job`,
so it doubles as the smallest example of the dock pattern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["InfoWidget"]


def _collect(progress=None) -> str:
    from ..core.sysinfo import collect, format_lines

    if progress is not None:
        progress.start(1, "probing devices")
    info = collect()
    if progress is not None:
        progress.advance()
    return "\n".join(format_lines(info))


class InfoWidget(QWidget):
    """Dock that lists versions, compute devices and folders."""

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.setLayout(QVBoxLayout())
        self.layout().addWidget(QLabel("<b>napari-interfaces</b>: system and devices"))
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlainText("Press Refresh to probe devices.")
        self.layout().addWidget(self.text)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.layout().addWidget(self.refresh_button)
        self.job = None
        from ._dock import _DOCK_MARK

        self.setProperty(_DOCK_MARK, True)  # tabs with the plugin's other docks
        self._tabified = False

    def event(self, ev) -> bool:  # noqa: D102 - Qt API
        from qtpy.QtCore import QEvent, QTimer

        if not getattr(self, "_tabified", True) and ev.type() == QEvent.Type.ParentChange:
            from ._dock import _tabify

            QTimer.singleShot(0, lambda: _tabify(self))
        return super().event(ev)

    def refresh(self, sync: bool = False) -> None:
        """Collect the information in the background and show it."""
        self.text.setPlainText("probing ...")
        self.job = run_job(
            _collect, on_done=self.text.setPlainText, description="device info", sync=sync
        )
