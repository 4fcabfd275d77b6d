"""The "Segment micrograph" dock: U-Net segmentation and fine-tuning from corrections.

1. Pick an **image** layer and check its **pixel size** (Å; read from the
   file when it records one, 0 = unknown: no rescaling).
2. Pick a **model** (the shipped default or any trained / fine-tuned one;
   its metadata is shown) and press **Segment**: tiled inference in the
   background adds a Labels layer.
3. Correct the Labels with napari's brush / fill / eraser, then press
   **Fine-tune**: the model trains a few epochs on the corrected image
   (optionally with a frozen encoder) in the background, with progress and
   Cancel, and is saved as a new model version with its lineage. The
   previous model stays in the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentWidget", "finetune_job", "segment_job"]


def segment_job(image, model_name: str, pixel_size: float | None, progress=None):
    """Engine work of **Segment**: ``(labels, model metadata)``."""
    from ..segment.inference import segment_image
    from ..segment.models import load_model

    model = load_model(model_name)
    labels = segment_image(image, model, pixel_size=pixel_size, progress=progress)
    return labels, model.metadata


def finetune_job(
    model_name: str,
    image,
    labels,
    pixel_size,
    epochs: int,
    freeze_encoder: bool,
    data_description: str = "",
    progress=None,
):
    """Engine work of **Fine-tune**: ``(new model name, path)``."""
    from ..segment.finetune import finetune

    model, path = finetune(
        model_name,
        [(image, labels)],
        pixel_size=pixel_size,
        epochs=epochs,
        freeze_encoder=freeze_encoder,
        data_description=data_description,
        progress=progress,
    )
    return model.name, path


class SegmentWidget(QWidget):
    """Segment micrographs with a U-Net; fine-tune it from corrected labels."""

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.models: list[Any] = []
        layout = QVBoxLayout(self)

        box = QGroupBox("Segment")
        form = QFormLayout(box)
        self.image_combo = QComboBox()
        form.addRow("image", self.image_combo)
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.0, 1e6)
        self.pixel_size.setDecimals(4)
        self.pixel_size.setSuffix(" Å/px")
        self.pixel_size.setToolTip("pixel size of the image; 0 = unknown (no rescaling)")
        form.addRow("pixel size", self.pixel_size)
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setToolTip("rescan the models folder")
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.refresh_button)
        form.addRow("model", row)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        form.addRow(self.model_info)
        self.segment_button = QPushButton("Segment")
        form.addRow(self.segment_button)
        layout.addWidget(box)

        tune = QGroupBox("Fine-tune from corrected labels")
        tform = QFormLayout(tune)
        self.labels_combo = QComboBox()
        tform.addRow("corrected labels", self.labels_combo)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(5)
        tform.addRow("epochs", self.epochs)
        self.freeze = QCheckBox("freeze encoder (train the decoder only)")
        self.freeze.setChecked(True)
        tform.addRow(self.freeze)
        self.finetune_button = QPushButton("Fine-tune")
        tform.addRow(self.finetune_button)
        layout.addWidget(tune)

        self.cancel_button = QPushButton("Cancel")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.refresh_button.clicked.connect(self.refresh_models)
        self.model_combo.currentIndexChanged.connect(self._show_model)
        self.image_combo.currentIndexChanged.connect(self._image_changed)
        self.segment_button.clicked.connect(lambda: self.run())
        self.finetune_button.clicked.connect(lambda: self.fine_tune())
        self.cancel_button.clicked.connect(self.cancel)
        if self.viewer is not None:
            self.viewer.layers.events.inserted.connect(self._refresh_layers)
            self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.refresh_models()
        self._refresh_layers()

    # -- lists -------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        from ..segment.models import list_models

        current = select or self.model_combo.currentData()
        self.models = list_models()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for m in self.models:
            self.model_combo.addItem(m.name, str(m.path))
        self.model_combo.blockSignals(False)
        if current:
            i = self.model_combo.findData(current)
            if i < 0:
                i = self.model_combo.findText(str(current))
            if i >= 0:
                self.model_combo.setCurrentIndex(i)
        if not self.models:
            self.model_info.setText("no model found: train one with `napari-interfaces train`")
        self._show_model()

    def _show_model(self, *_: Any) -> None:
        i = self.model_combo.currentIndex()
        if 0 <= i < len(self.models):
            m = self.models[i]
            self.model_info.setText(m.summary())
            self.model_combo.setToolTip(str(m.path))

    def _refresh_layers(self, *_: Any) -> None:
        if self.viewer is None:
            return
        from napari.layers import Image, Labels

        for combo, kind in ((self.image_combo, Image), (self.labels_combo, Labels)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            for layer in self.viewer.layers:
                if isinstance(layer, kind):
                    combo.addItem(layer.name)
            i = combo.findText(current)
            if i >= 0:
                combo.setCurrentIndex(i)
            combo.blockSignals(False)
        self._image_changed()

    def _image_changed(self, *_: Any) -> None:
        layer = self._layer(self.image_combo.currentText())
        if layer is None:
            return
        ps = (layer.metadata or {}).get("pixel_size")
        if ps:
            self.pixel_size.setValue(float(ps))

    def _layer(self, name: str):
        if self.viewer is None or not name or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    # -- actions -----------------------------------------------------------
    def _error(self, exc: BaseException) -> None:
        self.status.setText(f"error: {exc}")

    def _cancelled(self) -> None:
        self.status.setText("cancelled")

    def run(self, sync: bool = False):
        layer = self._layer(self.image_combo.currentText())
        if layer is None:
            self.status.setText("choose an image layer first")
            return None
        model = self.model_combo.currentData() or "default"
        ps = self.pixel_size.value() or None
        self.status.setText("segmenting…")
        self._source = layer
        self.job = run_job(
            segment_job,
            np.asarray(layer.data),
            model,
            ps,
            on_done=self._segmented,
            on_error=self._error,
            on_cancel=self._cancelled,
            description="segmenting micrograph",
            sync=sync,
        )
        return self.job

    def _segmented(self, result) -> None:
        labels, meta = result
        src = self._source
        name = f"{src.name} labels"
        kw = {"scale": tuple(src.scale[-2:]), "translate": tuple(src.translate[-2:])}
        md = {
            "model": self.model_combo.currentText(),
            "pixel_size": self.pixel_size.value() or None,
            "source_image": src.name,
        }
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = labels
            layer.metadata.update(md)
        else:
            layer = self.viewer.add_labels(labels, name=name, opacity=0.5, metadata=md, **kw)
        self._refresh_layers()
        self.labels_combo.setCurrentText(name)
        frac = float((labels > 0).mean())
        self.status.setText(f"{name}: {frac:.1%} foreground; correct it, then Fine-tune")

    def fine_tune(self, sync: bool = False):
        labels_layer = self._layer(self.labels_combo.currentText())
        if labels_layer is None:
            self.status.setText("choose the corrected Labels layer first")
            return None
        src_name = (labels_layer.metadata or {}).get(
            "source_image"
        ) or self.image_combo.currentText()
        image_layer = self._layer(src_name)
        if image_layer is None:
            self.status.setText("the image of these labels is not in the viewer")
            return None
        model = self.model_combo.currentData() or "default"
        ps = self.pixel_size.value() or None
        self.status.setText("fine-tuning…")
        self.job = run_job(
            finetune_job,
            model,
            np.asarray(image_layer.data),
            np.asarray(labels_layer.data),
            ps,
            self.epochs.value(),
            self.freeze.isChecked(),
            f"napari layers {image_layer.name!r} / {labels_layer.name!r}",
            on_done=self._tuned,
            on_error=self._error,
            on_cancel=self._cancelled,
            description="fine-tuning U-Net",
            sync=sync,
        )
        return self.job

    def _tuned(self, result) -> None:
        name, path = result
        self.refresh_models(select=str(path))
        self.status.setText(f"saved new model {name} ({path}); the previous model is unchanged")

    def cancel(self) -> None:
        if self.job is not None and not self.job.finished:
            self.job.cancel()
