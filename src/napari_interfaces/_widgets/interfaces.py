"""The "Interfaces" dock: phases and composition profiles of an APT dataset.

1. Pick the dataset (a point-cloud layer opened from a file, or a file via
   *Browse*; the range file with the same stem is used unless one is given),
   the method (HED edge detection, iso-concentration, Gaussian mixture), the
   slicing axes and the voxel size, then **Find interfaces**. The work runs
   in the background with a progress bar and **Cancel**; the edge
   probability (HED) is added as an Image and the phases as a Labels layer.
2. Correct the Labels with napari's paint / fill / erase tools.
3. **Recompute profiles** reads the (corrected) Labels layer and redraws the
   proxigram (and, when a Shapes layer holds a line, the profile along that
   cylinder of the given radius) in the dock; **Export CSV** saves it.
4. **Save labels** writes ``<dataset>.phases.tif`` beside the dataset
   (voxel size and origin kept); **Find interfaces** offers **Reload saved**
   when such a file exists. The labels live in the layer: closing the dock
   never discards edits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["InterfacesWidget", "find_interfaces_job", "saved_labels_path"]

METHOD_NAMES = {
    "HED edges (deep learning)": "hed",
    "iso-concentration": "iso",
    "Gaussian mixture": "gmm",
}


def saved_labels_path(source: str | Path) -> Path:
    """Where corrected labels of a dataset are saved: ``<stem>.phases.tif`` beside it."""
    p = Path(source)
    return p.with_name(p.stem + ".phases.tif")


def load_dataset(path: str, range_path: str | None = None, voxel: float = 1.0):
    """Atoms and composition voxels of a point-cloud file (engine helper)."""
    from ..apt.interfaces import atoms_from_cloud, volume_from_atoms
    from ..io.apt_pointcloud import read_pointcloud
    from ..io.ranges import find_range_file, read_ranges

    cloud = read_pointcloud(path)
    rf = range_path or find_range_file(path)
    if not rf:
        raise FileNotFoundError(f"{path}: no range file with the same stem; choose one")
    atoms = atoms_from_cloud(cloud, read_ranges(rf))
    return atoms, volume_from_atoms(atoms, voxel)


def find_interfaces_job(
    path: str, range_path: str | None, method: str, axes: str, voxel: float, progress=None
) -> dict[str, Any]:
    """Engine work of the dock (no Qt): load, voxelize, segment."""
    from ..apt.interfaces import find_interfaces
    from ..core.progress import as_progress

    progress = as_progress(progress)
    progress.start(None, "reading and voxelizing")
    atoms, vol = load_dataset(path, range_path, voxel)
    res = find_interfaces(vol, method, axes=axes, progress=progress)
    return {"atoms": atoms, "volume": vol, "result": res, "path": path}


def profiles_job(
    labels, grid, atoms, volume, ref, line, radius: float, progress=None
) -> dict[str, Any]:
    """Engine work of "Recompute profiles" (no Qt): proxigram, phase table, cylinder."""
    from ..apt.phases import phase_table
    from ..apt.profile import cylinder_profile, line_from_shape
    from ..apt.proxigram import proxigram
    from ..core.progress import as_progress

    progress = as_progress(progress)
    progress.start(None, "proxigram")
    profile = proxigram(labels, grid, atoms, phase=ref)
    progress.check()
    cylinder = None
    if line is not None:
        a, b = line_from_shape(line)
        cylinder = cylinder_profile(atoms, a, b, radius)
    return {"profile": profile, "cylinder": cylinder, "phases": phase_table(labels, volume)}


class InterfacesWidget(QWidget):
    """Dock widget; see the module docstring."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.profile_job = None
        self._sync = False
        #: per Labels layer name: {"atoms", "volume", "path"} (engine data, not copies of labels)
        self.datasets: dict[str, dict[str, Any]] = {}
        self.profile = None
        self.cylinder = None

        form = QFormLayout()
        self.dataset = QComboBox()
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.dataset, 1)
        row.addWidget(self.browse)
        form.addRow("dataset", row)
        self.ranges = QLineEdit()
        self.ranges.setPlaceholderText("range file (default: same stem)")
        form.addRow("ranges", self.ranges)
        self.method = QComboBox()
        self.method.addItems(list(METHOD_NAMES))
        form.addRow("method", self.method)
        self.axes = QLineEdit("zyx")
        self.axes.setToolTip("HED slicing axes: z, y, x or a combination")
        form.addRow("slicing axes", self.axes)
        self.voxel = QDoubleSpinBox()
        self.voxel.setRange(0.2, 5.0)
        self.voxel.setSingleStep(0.1)
        self.voxel.setValue(1.0)
        self.voxel.setSuffix(" nm")
        form.addRow("voxel", self.voxel)

        self.run_btn = QPushButton("Find interfaces")
        self.run_btn.clicked.connect(lambda: self.run())
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.reload_btn = QPushButton("Reload saved")
        self.reload_btn.clicked.connect(lambda: self.reload_saved())
        buttons = QHBoxLayout()
        for b in (self.run_btn, self.cancel_btn, self.reload_btn):
            buttons.addWidget(b)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        prof = QFormLayout()
        self.labels_combo = QComboBox()
        prof.addRow("phases layer", self.labels_combo)
        self.ref_phase = QSpinBox()
        self.ref_phase.setRange(0, 255)
        self.ref_phase.setSpecialValueText("auto (smallest)")
        prof.addRow("reference phase", self.ref_phase)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(0.2, 50.0)
        self.radius.setValue(2.0)
        self.radius.setSuffix(" nm")
        prof.addRow("cylinder radius", self.radius)
        self.recompute_btn = QPushButton("Recompute profiles")
        self.recompute_btn.clicked.connect(lambda: self.recompute_profiles())
        self.export_btn = QPushButton("Export CSV")
        self.export_btn.clicked.connect(lambda: self.export_csv())
        self.save_btn = QPushButton("Save labels")
        self.save_btn.clicked.connect(lambda: self.save_labels())
        pbuttons = QHBoxLayout()
        for b in (self.recompute_btn, self.export_btn, self.save_btn):
            pbuttons.addWidget(b)

        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 3), dpi=90)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(240)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addLayout(prof)
        lay.addLayout(pbuttons)
        lay.addWidget(self.canvas)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------ layers
    def _refresh_layers(self, *_: Any) -> None:
        import napari

        current = self.dataset.currentText()
        self.dataset.clear()
        for layer in self.viewer.layers:
            src = layer.metadata.get("apt_source") if isinstance(layer.metadata, dict) else None
            if isinstance(layer, napari.layers.Points) and src:
                self.dataset.addItem(layer.name, src)
        for i in range(self.dataset.count()):
            if self.dataset.itemText(i) == current:
                self.dataset.setCurrentIndex(i)
        cur_l = self.labels_combo.currentText()
        self.labels_combo.clear()
        for layer in self.viewer.layers:
            if isinstance(layer, napari.layers.Labels) and layer.name in self.datasets:
                self.labels_combo.addItem(layer.name)
        if cur_l:
            idx = self.labels_combo.findText(cur_l)
            if idx >= 0:
                self.labels_combo.setCurrentIndex(idx)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "APT point cloud", "", "APT (*.pos *.epos *.apt *.ato *.csv *.txt)"
        )
        if path:
            self.dataset.addItem(Path(path).name, path)
            self.dataset.setCurrentIndex(self.dataset.count() - 1)

    def source_path(self) -> str:
        path = self.dataset.currentData()
        if not path:
            raise ValueError("choose a dataset: open a point cloud file or use Browse…")
        return str(path)

    # ------------------------------------------------------------ run
    def run(self, sync: bool = False):
        """Start the segmentation (background unless ``sync``); returns the Job."""
        try:
            path = self.source_path()
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        axes = self.axes.text().strip().lower() or "zyx"
        method = METHOD_NAMES[self.method.currentText()]
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status.setText(f"running {method} on {Path(path).name}…")
        self._sync = sync
        self.job = run_job(
            find_interfaces_job,
            path,
            self.ranges.text().strip() or None,
            method,
            axes,
            float(self.voxel.value()),
            on_done=self._on_done,
            on_error=self._on_error,
            on_cancel=self._on_cancel,
            description="Interfaces",
            sync=sync,
        )
        return self.job

    def cancel(self) -> None:
        if self.job is not None and not self.job.finished:
            self.job.cancel()

    def _reset_buttons(self) -> None:
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _on_error(self, exc: BaseException) -> None:
        self._reset_buttons()
        self.status.setText(f"failed: {exc}")

    def _on_cancel(self) -> None:
        self._reset_buttons()
        self.status.setText("cancelled")

    def _on_done(self, out: dict[str, Any]) -> None:
        self._reset_buttons()
        res = out["result"]
        name = f"{Path(out['path']).stem} phases"
        kw = res.grid.layer_kwargs()
        if res.edge_prob is not None:
            ename = f"{Path(out['path']).stem} edge probability"
            if ename in self.viewer.layers:
                self.viewer.layers[ename].data = res.edge_prob
            else:
                self.viewer.add_image(
                    res.edge_prob, name=ename, colormap="gray", blending="additive", **kw
                )
        meta = {
            "grid": res.grid.to_dict(),
            "apt_source": out["path"],
            "method": res.method,
            "phases": res.phases,
        }
        self.datasets[name] = {"atoms": out["atoms"], "volume": out["volume"], "path": out["path"]}
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = res.labels
            layer.metadata.update(meta)
        else:
            self.viewer.add_labels(res.labels, name=name, opacity=0.5, metadata=meta, **kw)
        self._refresh_layers()
        self.labels_combo.setCurrentIndex(self.labels_combo.findText(name))
        self.status.setText(res.message + "; " + self._phase_text(res.phases))
        if res.found:
            self.recompute_profiles(sync=self._sync)

    @staticmethod
    def _phase_text(phases: list[dict]) -> str:
        return " | ".join(
            f"{p['label']}: " + ", ".join(f"{e} {v:.1f}" for e, v in p["composition"].items())
            for p in phases
        )

    # ------------------------------------------------------------ profiles
    def labels_layer(self):
        name = self.labels_combo.currentText()
        if not name or name not in self.viewer.layers:
            raise ValueError("find interfaces first (no phases layer)")
        return self.viewer.layers[name]

    def recompute_profiles(self, sync: bool = False):
        """Proxigram (and cylinder profile) from the current, possibly corrected, labels.

        The layer data, the reference phase and the line are read here (GUI
        thread); the profiles are computed in a background job and drawn
        when it finishes. Returns the Job (``None`` when there is nothing to
        compute); ``sync=True`` runs it to completion first (tests).
        """
        from ..core.geometry import Grid

        try:
            layer = self.labels_layer()
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        ds = self.datasets[layer.name]
        labels = np.array(layer.data, dtype=np.int32)  # a copy: the user may keep painting
        grid = Grid.from_dict(layer.metadata["grid"])
        ref = self.ref_phase.value() or None
        line = None
        import napari

        for sh in self.viewer.layers:
            if isinstance(sh, napari.layers.Shapes) and len(sh.data):
                line = np.asarray(sh.data[-1])
                break
        name = layer.name
        self.recompute_btn.setEnabled(False)
        self.status.setText("computing profiles…")
        self.profile_job = run_job(
            profiles_job,
            labels,
            grid,
            ds["atoms"],
            ds["volume"],
            ref,
            line,
            float(self.radius.value()),
            on_done=lambda out: self._on_profiles(name, out),
            on_error=self._on_profiles_error,
            on_cancel=lambda: self.recompute_btn.setEnabled(True),
            description="Profiles",
            sync=sync,
        )
        return self.profile_job

    def _on_profiles_error(self, exc: BaseException) -> None:
        self.recompute_btn.setEnabled(True)
        self.profile = None
        self.status.setText(str(exc))

    def _on_profiles(self, name: str, out: dict[str, Any]) -> None:
        self.recompute_btn.setEnabled(True)
        self.profile, self.cylinder = out["profile"], out["cylinder"]
        if name in self.viewer.layers:
            self.viewer.layers[name].metadata["phases"] = out["phases"]
        self.status.setText(self._phase_text(out["phases"]))
        self._plot()

    def _plot(self) -> None:
        self.figure.clear()
        n = 2 if self.cylinder is not None else 1
        ax = self.figure.add_subplot(n, 1, 1)
        self.profile.plot(ax, title="proxigram")
        if self.cylinder is not None:
            ax2 = self.figure.add_subplot(n, 1, 2)
            self.cylinder.plot(ax2, title="cylinder profile")
            ax2.set_xlabel("distance along the line (nm)")
        self.figure.tight_layout()
        self.canvas.draw()  # synchronous: a deferred draw can outlive a closed dock

    def export_csv(self, path: str | None = None) -> Path | None:
        if self.profile is None:
            self.status.setText("recompute profiles first")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save proxigram", "proxigram.csv", "CSV (*.csv)"
            )
            if not path:
                return None
        out = self.profile.to_csv(path)
        if self.cylinder is not None:
            self.cylinder.to_csv(Path(path).with_name(Path(path).stem + "_cylinder.csv"))
        self.status.setText(f"saved {out}")
        return out

    # ------------------------------------------------------------ persistence
    def save_labels(self, path: str | None = None) -> Path | None:
        """Write the (corrected) labels beside the dataset as ``<stem>.phases.tif``."""
        from ..core.geometry import Grid
        from ..io.apt_volume import write_volume_tiff

        try:
            layer = self.labels_layer()
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        src = layer.metadata.get("apt_source")
        out = Path(path) if path else saved_labels_path(src)
        write_volume_tiff(
            out,
            np.asarray(layer.data).astype(np.uint16),
            Grid.from_dict(layer.metadata["grid"]),
            {"apt_source": src, "method": layer.metadata.get("method"), "corrected": True},
        )
        self.status.setText(f"saved {out}")
        return out

    def reload_saved(self, path: str | None = None, sync: bool = True):
        """Load ``<stem>.phases.tif`` of the current dataset as the phases layer."""
        from ..io.apt_volume import read_volume_tiff

        try:
            src = self.source_path()
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        p = Path(path) if path else saved_labels_path(src)
        if not p.is_file():
            self.status.setText(f"no saved labels at {p}")
            return None
        vol = read_volume_tiff(p)
        name = f"{Path(src).stem} phases"
        atoms, volume = load_dataset(
            src, self.ranges.text().strip() or None, float(vol.grid.spacing[0])
        )
        self.datasets[name] = {"atoms": atoms, "volume": volume, "path": src}
        meta = {"grid": vol.grid.to_dict(), "apt_source": src, "method": "saved"}
        data = np.asarray(vol.data).astype(np.int32)
        if name in self.viewer.layers:
            self.viewer.layers[name].data = data
            self.viewer.layers[name].metadata.update(meta)
        else:
            self.viewer.add_labels(
                data, name=name, opacity=0.5, metadata=meta, **vol.grid.layer_kwargs()
            )
        self._refresh_layers()
        self.labels_combo.setCurrentIndex(self.labels_combo.findText(name))
        self.status.setText(f"reloaded {p}")
        return self.viewer.layers[name]
