"""The "Chip communities" dock: unsupervised segmentation by chip similarity graphs.

Pick one or more co-registered Image layers (channels), set the chip grid,
features and graph settings, press *Run*: the engine
(:func:`napari_interfaces.cluster.pipeline.segment_by_communities`) runs on a
worker with progress and *Cancel*; the result is a Labels layer, a community
table and a gallery of example chips per community. Edit the Labels (merge,
split, repaint) and press *Learn from corrections*: a classifier on the chip
features relabels everything; *Save model* writes it (JSON + npz) for
``napari-interfaces cluster-apply``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["ChipCommunitiesWidget"]

LABELS_NAME = "chip communities"


def _spin(lo, hi, val, step=1, double=False):
    w = QDoubleSpinBox() if double else QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(val)
    return w


class ChipCommunitiesWidget(QWidget):
    """Dock: settings, Run/Cancel, Labels result, table, gallery, corrections."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.result = None
        self.model = None
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<b>Chip communities</b>: unsupervised segmentation"))
        self.layers = QListWidget()
        self.layers.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.layers.setMaximumHeight(80)
        lay.addWidget(QLabel("Image layers (several = channels):"))
        lay.addWidget(self.layers)
        form = QFormLayout()
        self.chip = _spin(4, 1024, 64, 8)
        self.stride = _spin(1, 1024, 32, 8)
        self.features = QComboBox()
        self.features.addItems(["fft", "filterbank", "learned", "resnet50"])
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("weights file (resnet50)")
        self.k = _spin(1, 200, 10)
        self.resolution = _spin(0.01, 20.0, 1.0, 0.1, double=True)
        self.merge = _spin(0, 100, 0)
        self.merge.setSpecialValueText("off")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.spatial = _spin(0.0, 10.0, 0.0, 0.1, double=True)
        self.clahe = QCheckBox("CLAHE")
        self.refine = QCheckBox("refine boundaries")
        self.keep_ids = QCheckBox("keep IDs of previous run")
        self.keep_ids.setChecked(True)
        for name, w in (
            ("chip (px)", self.chip),
            ("stride (px)", self.stride),
            ("features", self.features),
            ("weights", self.weights),
            ("k neighbours", self.k),
            ("resolution", self.resolution),
            ("merge to", self.merge),
            ("seed", self.seed),
            ("spatial weight", self.spatial),
        ):
            form.addRow(name, w)
        lay.addLayout(form)
        row = QHBoxLayout()
        for w in (self.clahe, self.refine, self.keep_ids):
            row.addWidget(w)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["id", "area", "chips", "mean"])
        self.table.setMaximumHeight(160)
        lay.addWidget(self.table)
        self.gallery = QWidget()
        self.gallery.setLayout(QGridLayout())
        lay.addWidget(QLabel("Example chips per community:"))
        lay.addWidget(self.gallery)
        row = QHBoxLayout()
        self.learn_button = QPushButton("Learn from corrections")
        self.save_button = QPushButton("Save model…")
        self.learn_button.setEnabled(False)
        self.save_button.setEnabled(False)
        row.addWidget(self.learn_button)
        row.addWidget(self.save_button)
        lay.addLayout(row)
        lay.addStretch(1)

        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        self.learn_button.clicked.connect(lambda: self.learn())
        self.save_button.clicked.connect(lambda: self.save_model())
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------- inputs
    def _refresh_layers(self, *_):
        from napari.layers import Image

        selected = {i.text() for i in self.layers.selectedItems()}
        self.layers.clear()
        names = [ly.name for ly in self.viewer.layers if isinstance(ly, Image)]
        self.layers.addItems(names)
        for i in range(self.layers.count()):
            it = self.layers.item(i)
            if it.text() in selected or (not selected and i == 0):
                it.setSelected(True)

    def selected_images(self) -> list[np.ndarray]:
        names = [i.text() for i in self.layers.selectedItems()]
        if not names and self.layers.count():
            names = [self.layers.item(0).text()]
        out = []
        for n in names:
            data = np.asarray(self.viewer.layers[n].data)
            if self.viewer.layers[n].rgb:
                data = data[..., :3]
            out.append(data)
        return out

    def settings(self) -> dict:
        return dict(
            chip=self.chip.value(),
            stride=self.stride.value(),
            features=self.features.currentText(),
            k=self.k.value(),
            resolution=self.resolution.value(),
            merge_to=self.merge.value() or None,
            seed=self.seed.value(),
            weights=self.weights.text().strip() or None,
            clahe=self.clahe.isChecked(),
            spatial_weight=self.spatial.value(),
            refine=self.refine.isChecked(),
        )

    # ---------------------------------------------------------------- run
    def run(self, sync: bool = False):
        from ..cluster.pipeline import segment_by_communities

        images = self.selected_images()
        if not images:
            self.status.setText("Add an image layer first.")
            return None
        kw = self.settings()
        if self.keep_ids.isChecked() and LABELS_NAME in self.viewer.layers:
            prev = np.asarray(self.viewer.layers[LABELS_NAME].data)
            if prev.shape == images[0].shape[:2]:
                kw["reference_labels"] = prev
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("running…")
        self.job = run_job(
            segment_by_communities,
            images,
            on_done=self._done,
            on_error=self._error,
            on_cancel=self._cancelled,
            description="chip communities",
            sync=sync,
            **kw,
        )
        return self.job

    def cancel(self):
        if self.job is not None:
            self.job.cancel()

    def _reset_buttons(self):
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _error(self, exc):
        self._reset_buttons()
        self.status.setText(f"error: {exc}")
        from napari.utils.notifications import show_error

        show_error(f"Chip communities: {exc}")

    def _cancelled(self):
        self._reset_buttons()
        self.status.setText("cancelled")

    def _done(self, res):
        self._reset_buttons()
        self.result = res
        self._show_labels(res.labels)
        t = res.timings
        self.status.setText(
            f"{res.n_communities} communities ({res.n_detected} detected), {res.grid.n_chips} chips, "
            f"{t['total']:.2f} s (features {t['features']:.2f}, graph {t['graph']:.2f}, "
            f"communities {t['communities']:.2f}, paint {t['paint']:.2f})"
        )
        self._fill_table(res.table)
        self._fill_gallery(res)
        self.learn_button.setEnabled(True)

    def _show_labels(self, labels):
        if LABELS_NAME in self.viewer.layers:
            self.viewer.layers[LABELS_NAME].data = labels
        else:
            self.viewer.add_labels(labels, name=LABELS_NAME, opacity=0.5)

    def _fill_table(self, rows):
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            vals = [
                str(r["id"]),
                f"{r['area_fraction']:.3f}",
                str(r["chips"]),
                ", ".join(f"{v:.3f}" for v in r["mean_intensity"]),
            ]
            for j, v in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(v))

    def _fill_gallery(self, res, n: int = 4, size: int = 40):
        from ..cluster.chips import extract_chips

        grid_lay = self.gallery.layout()
        while grid_lay.count():
            w = grid_lay.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.gallery_pixmaps = []
        for row, r in enumerate(res.table[:10]):
            grid_lay.addWidget(QLabel(str(r["id"])), row, 0)
            idx = np.asarray(r["example_chips"][:n], int)
            if idx.size == 0:
                continue
            chips = extract_chips(res.image, res.grid, idx)[..., 0]
            for col, c in enumerate(chips):
                a = np.clip(c * 255, 0, 255).astype(np.uint8)
                a = np.ascontiguousarray(a)
                qimg = QImage(
                    a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_Grayscale8
                ).copy()
                pm = QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio)
                lbl = QLabel()
                lbl.setPixmap(pm)
                lbl.setToolTip(f"community {r['id']}, chip {int(idx[col])}")
                grid_lay.addWidget(lbl, row, col + 1)
                self.gallery_pixmaps.append(pm)

    # -------------------------------------------------------- corrections
    def learn(self, sync: bool = False):
        from ..cluster.corrections import learn_from_corrections

        if self.result is None or LABELS_NAME not in self.viewer.layers:
            self.status.setText("Run first, then edit the labels.")
            return None
        corrected = np.asarray(self.viewer.layers[LABELS_NAME].data).copy()

        def _learn(progress=None):
            return learn_from_corrections(self.result, corrected, refine=self.refine.isChecked())

        def _done(out):
            model, labels, chip_labels = out
            self.model = model
            self.result.chip_labels = chip_labels
            self.result.labels = labels
            self._show_labels(labels)
            self.save_button.setEnabled(True)
            self.status.setText(
                f"relabelled with a classifier fitted on {model.extra.get('n_train_chips')} chips "
                f"({len(model.classes)} classes)"
            )

        self.job = run_job(
            _learn,
            on_done=_done,
            on_error=self._error,
            description="learn from corrections",
            sync=sync,
        )
        return self.job

    def save_model(self, path: str | None = None):
        if self.model is None:
            self.status.setText("Learn from corrections first.")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save corrections model", "cluster_model.json", "JSON (*.json)"
            )
            if not path:
                return None
        js, npz = self.model.save(path)
        self.status.setText(f"saved {js.name} + {npz.name}")
        return js
