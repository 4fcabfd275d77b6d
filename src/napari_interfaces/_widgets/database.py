"""The "Simulated database" dock: edit a spec, generate, browse samples.

1. Start from a shipped example spec (or type your own YAML) and edit it.
2. Choose the number of samples, seed, output store and where to compute
   (this process, a local dask cluster, or a dask scheduler address), then
   **Generate**: background job with progress and Cancel; re-running the
   same settings resumes an interrupted store.
3. **Browse**: pick a sample index to show its image and labels (and its
   drawn parameters).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["DatabaseWidget", "generate_job"]

SCHEDULERS = ("this process", "local dask cluster", "dask scheduler address")


def generate_job(
    spec_text: str, out: str, n: int, seed: int, scheduler, workers: int, progress=None
):
    """Engine work of **Generate** (parses the YAML text, then generates)."""
    import yaml

    from ..simulate.database import generate_database
    from ..simulate.spec import DatabaseSpec

    try:
        data = yaml.safe_load(spec_text)
    except yaml.YAMLError as exc:
        raise ValueError(f"spec is not valid YAML: {exc}") from exc
    spec = DatabaseSpec.from_dict(data or {})
    return generate_database(
        spec, out, n=n, seed=seed, scheduler=scheduler, workers=workers, progress=progress
    )


class DatabaseWidget(QWidget):
    """Generate simulated HRTEM databases and browse their samples."""

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None) -> None:
        super().__init__()
        from ..core import config
        from ..simulate.spec import list_examples

        self.viewer = napari_viewer
        self.job = None
        layout = QVBoxLayout(self)

        box = QGroupBox("Spec")
        form = QFormLayout(box)
        self.example = QComboBox()
        self.example.addItems(list_examples())
        form.addRow("example", self.example)
        self.editor = QPlainTextEdit()
        self.editor.setMinimumHeight(180)
        form.addRow(self.editor)
        layout.addWidget(box)

        gen = QGroupBox("Generate")
        gform = QFormLayout(gen)
        self.n = QSpinBox()
        self.n.setRange(1, 10_000_000)
        self.n.setValue(8)
        gform.addRow("samples", self.n)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        gform.addRow("seed", self.seed)
        self.out = QLineEdit(str(config.cache_dir() / "databases" / "database.zarr"))
        gform.addRow("store", self.out)
        self.scheduler = QComboBox()
        self.scheduler.addItems(SCHEDULERS)
        gform.addRow("compute on", self.scheduler)
        self.address = QLineEdit("")
        self.address.setPlaceholderText("tcp://host:8786")
        gform.addRow("address", self.address)
        self.workers = QSpinBox()
        self.workers.setRange(1, 1024)
        self.workers.setValue(1)
        gform.addRow("local workers", self.workers)
        self.generate_button = QPushButton("Generate")
        self.cancel_button = QPushButton("Cancel")
        gform.addRow(self.generate_button)
        gform.addRow(self.cancel_button)
        layout.addWidget(gen)

        browse = QGroupBox("Browse")
        bform = QFormLayout(browse)
        self.index = QSpinBox()
        self.index.setRange(0, 0)
        bform.addRow("sample", self.index)
        self.show_button = QPushButton("Show sample")
        bform.addRow(self.show_button)
        self.meta = QLabel("")
        self.meta.setWordWrap(True)
        bform.addRow(self.meta)
        layout.addWidget(browse)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.example.currentTextChanged.connect(self.load_example)
        self.generate_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        self.show_button.clicked.connect(lambda: self.show_sample())
        self.index.valueChanged.connect(lambda *_: self.show_sample())
        default = (
            "tiny_synthetic" if "tiny_synthetic" in list_examples() else self.example.currentText()
        )
        self.example.setCurrentText(default)
        self.load_example(default)

    def load_example(self, name: str) -> None:
        from ..simulate import spec as spec_module
        from ..simulate.spec import load_spec

        path = Path(spec_module.__file__).parent / "examples" / f"{name}.yaml"
        if path.is_file():
            self.editor.setPlainText(path.read_text(encoding="utf-8"))
            spec = load_spec(str(path))
            self.seed.setValue(spec.seed)
            if spec.n:
                self.n.setValue(min(spec.n, 8))
            self.out.setText(str(Path(self.out.text()).with_name(f"{spec.name}.zarr")))

    def _scheduler(self):
        choice = self.scheduler.currentText()
        if choice == SCHEDULERS[0]:
            return "inline"
        if choice == SCHEDULERS[1]:
            return None
        addr = self.address.text().strip()
        if not addr:
            raise ValueError("give the dask scheduler address (tcp://host:8786)")
        return addr

    def run(self, sync: bool = False):
        try:
            scheduler = self._scheduler()
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        self.status.setText("generating…")
        self.job = run_job(
            generate_job,
            self.editor.toPlainText(),
            self.out.text(),
            self.n.value(),
            self.seed.value(),
            scheduler,
            self.workers.value(),
            on_done=self._generated,
            on_error=self._error,
            on_cancel=self._cancelled,
            description="simulated database",
            sync=sync,
        )
        return self.job

    def _error(self, exc: BaseException) -> None:
        self.status.setText(f"error: {exc}")

    def _cancelled(self) -> None:
        self.status.setText("cancelled; Generate again to resume")

    def _generated(self, result) -> None:
        self.status.setText(
            f"{result.path}: {result.n} samples ({result.computed} computed, {result.skipped} resumed)"
        )
        self.index.setRange(0, max(0, result.n - 1))
        self.show_sample()

    def show_sample(self, index: int | None = None) -> None:
        from ..simulate.database import read_attrs, read_sample

        store = self.out.text()
        i = self.index.value() if index is None else int(index)
        try:
            image, labels, meta = read_sample(store, i)
            ps = float(read_attrs(store).get("pixel_size") or 1.0)
        except (FileNotFoundError, ValueError, IndexError) as exc:
            self.meta.setText(str(exc))
            return
        if self.viewer is not None:
            for name, data, kind in (
                ("database image", image, "image"),
                ("database labels", labels, "labels"),
            ):
                if name in self.viewer.layers:
                    self.viewer.layers[name].data = data
                    self.viewer.layers[name].scale = (ps, ps)
                elif kind == "image":
                    self.viewer.add_image(
                        data,
                        name=name,
                        scale=(ps, ps),
                        colormap="gray",
                        metadata={"pixel_size": ps},
                    )
                else:
                    self.viewer.add_labels(
                        data, name=name, scale=(ps, ps), opacity=0.4, metadata={"pixel_size": ps}
                    )
        self.meta.setText(f"sample {i}: " + json.dumps(meta.get("parameters", {}))[:600])

    def cancel(self) -> None:
        if self.job is not None and not self.job.finished:
            self.job.cancel()
