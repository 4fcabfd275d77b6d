"""The "APT explorer" dock: range a point cloud, voxelize it, look at slabs.

Choose a point cloud and a range file (picked up automatically when one has
the same stem), the voxel size, an optional delocalization (x, y, z in nm),
the elements and the slicing axis with a slab thickness. **Compute** reads,
ranges and voxelizes in the background (with a progress bar and Cancel) and
adds or updates one composition Image layer per element (at.%, nm scale).
The slicing axis and thickness drive napari's own dims: the chosen axis
becomes the slider axis and layers are shown as the mean over the slab. A
mass spectrum with the ranges shaded is drawn in the dock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["AptExplorer", "explore"]


def explore(
    path: str,
    range_path: str,
    voxel_size: float,
    delocalization_xyz: tuple[float, float, float] | None,
    progress=None,
) -> dict[str, Any]:
    """Engine work of the dock: read, range, voxelize, histogram the masses."""
    from ..apt.spectrum import mass_spectrum
    from ..apt.voxelize import voxelize
    from ..core.progress import as_progress
    from ..io.apt_pointcloud import read_pointcloud
    from ..io.ranges import read_ranges

    progress = as_progress(progress)
    progress.start(None, "reading")
    cloud = read_pointcloud(path)
    ranges = read_ranges(range_path)
    deloc = None
    if delocalization_xyz is not None:
        dx, dy, dz = delocalization_xyz
        deloc = (dz, dy, dx)
    vox = voxelize(cloud, ranges, voxel_size=voxel_size, delocalization=deloc, progress=progress)
    top = max(r.hi for r in ranges) * 1.1 if len(ranges) else None
    edges, counts = mass_spectrum(cloud.mass, bin_width=0.05, mass_max=top)
    return {"cloud": cloud, "ranges": ranges, "vox": vox, "spectrum": (edges, counts)}


class AptExplorer(QWidget):
    """Dock widget; see the module docs. ``sync = True`` runs jobs inline (tests)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.sync = False
        self.job = None
        self.result: dict[str, Any] | None = None
        self.layers: dict[str, Any] = {}
        self._ranges = None

        self.setLayout(QVBoxLayout())
        form = QFormLayout()
        self.layout().addLayout(form)

        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText(".pos .epos .apt .ato .csv")
        self.file_edit.editingFinished.connect(self._file_changed)
        form.addRow("point cloud", self._with_browse(self.file_edit, self._browse_file))
        self.range_edit = QLineEdit()
        self.range_edit.setPlaceholderText(".rrng .rng .env (same stem found automatically)")
        self.range_edit.editingFinished.connect(self._load_ranges)
        form.addRow("range file", self._with_browse(self.range_edit, self._browse_ranges))

        self.voxel_spin = QDoubleSpinBox()
        self.voxel_spin.setRange(0.1, 20.0)
        self.voxel_spin.setSingleStep(0.5)
        self.voxel_spin.setValue(1.0)
        self.voxel_spin.setSuffix(" nm")
        form.addRow("voxel size", self.voxel_spin)

        deloc_row = QHBoxLayout()
        self.deloc_check = QCheckBox("on")
        deloc_row.addWidget(self.deloc_check)
        self.deloc_spins = []
        for label, value in (("x", 3.0), ("y", 3.0), ("z", 1.5)):
            s = QDoubleSpinBox()
            s.setRange(0.0, 20.0)
            s.setSingleStep(0.5)
            s.setValue(value)
            s.setToolTip(f"delocalization along {label} in nm (Gaussian, sigma = d / 3)")
            deloc_row.addWidget(QLabel(label))
            deloc_row.addWidget(s)
            self.deloc_spins.append(s)
        form.addRow("delocalization", deloc_row)

        self.element_list = QListWidget()
        self.element_list.setMaximumHeight(90)
        form.addRow("elements", self.element_list)

        slab_row = QHBoxLayout()
        self.axis_combo = QComboBox()
        self.axis_combo.addItems(["z", "y", "x"])
        self.axis_combo.currentTextChanged.connect(self._apply_slicing)
        self.thickness_spin = QDoubleSpinBox()
        self.thickness_spin.setRange(0.0, 100.0)
        self.thickness_spin.setValue(1.0)
        self.thickness_spin.setSuffix(" nm")
        self.thickness_spin.valueChanged.connect(self._apply_slicing)
        slab_row.addWidget(self.axis_combo)
        slab_row.addWidget(QLabel("thickness"))
        slab_row.addWidget(self.thickness_spin)
        form.addRow("slice axis", slab_row)

        buttons = QHBoxLayout()
        self.compute_button = QPushButton("Compute")
        self.compute_button.clicked.connect(lambda: self.compute())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.compute_button)
        buttons.addWidget(self.cancel_button)
        self.layout().addLayout(buttons)

        self.status = QLabel("Choose a point cloud and a range file.")
        self.status.setWordWrap(True)
        self.layout().addWidget(self.status)

        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.ax = self.figure.add_subplot(111)
        self.layout().addWidget(self.canvas)

        if self.viewer is not None:
            self._pick_up_layer()

    # ------------------------------------------------------------------ inputs
    def _with_browse(self, edit: QLineEdit, slot) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit)
        b = QPushButton("…")
        b.setMaximumWidth(30)
        b.clicked.connect(slot)
        row.addWidget(b)
        return w

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Point cloud", "", "APT (*.pos *.epos *.apt *.ato *.csv *.txt *.npz)"
        )
        if path:
            self.set_file(path)

    def _browse_ranges(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Range file", "", "Ranges (*.rrng *.rng *.env)"
        )
        if path:
            self.set_ranges(path)

    def _pick_up_layer(self) -> None:
        """Prefill from the newest layer our reader made (metadata ``apt_source``)."""
        for layer in reversed(list(self.viewer.layers)):
            src = layer.metadata.get("apt_source") if hasattr(layer, "metadata") else None
            if src:
                self.set_file(src)
                rf = layer.metadata.get("range_file")
                if rf:
                    self.set_ranges(rf)
                return

    def set_file(self, path: str) -> None:
        self.file_edit.setText(str(path))
        self._file_changed()

    def set_ranges(self, path: str) -> None:
        self.range_edit.setText(str(path))
        self._load_ranges()

    def _file_changed(self) -> None:
        from ..io.ranges import find_range_file

        path = self.file_edit.text().strip()
        if not path:
            return
        found = find_range_file(path)
        if found is not None:
            self.set_ranges(str(found))
        elif not self.range_edit.text().strip():
            self.status.setText(
                f"No range file with the stem of {Path(path).name} found; choose one."
            )

    def _load_ranges(self) -> None:
        from ..io.ranges import read_ranges

        path = self.range_edit.text().strip()
        if not path:
            return
        try:
            self._ranges = read_ranges(path)
        except (ValueError, OSError) as exc:
            self._ranges = None
            self._show_error(exc)
            return
        self.element_list.clear()
        for el in self._ranges.elements:
            item = QListWidgetItem(el)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.element_list.addItem(item)
        self.status.setText(
            f"{len(self._ranges)} ranges, species {', '.join(self._ranges.species)}"
        )

    def selected_elements(self) -> list[str]:
        return [
            self.element_list.item(i).text()
            for i in range(self.element_list.count())
            if self.element_list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def set_elements(self, elements: list[str]) -> None:
        for i in range(self.element_list.count()):
            item = self.element_list.item(i)
            checked = item.text() in elements
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------------ compute
    def compute(self, sync: bool | None = None):
        """Start (or with ``sync`` run) read + range + voxelize; returns the Job."""
        path = self.file_edit.text().strip()
        rpath = self.range_edit.text().strip()
        if not path or not rpath:
            self.status.setText("Choose a point cloud and a range file first.")
            return None
        deloc = (
            tuple(s.value() for s in self.deloc_spins) if self.deloc_check.isChecked() else None
        )
        self.status.setText("computing…")
        self.compute_button.setEnabled(False)
        self.job = run_job(
            explore,
            path,
            rpath,
            self.voxel_spin.value(),
            deloc,
            on_done=self._on_done,
            on_error=self._show_error,
            on_cancel=self._on_cancel,
            description="APT explorer",
            sync=self.sync if sync is None else sync,
        )
        return self.job

    def cancel(self) -> None:
        if self.job is not None and not self.job.finished:
            self.job.cancel()

    def _on_cancel(self) -> None:
        self.compute_button.setEnabled(True)
        self.status.setText("cancelled")

    def _show_error(self, exc: BaseException) -> None:
        self.compute_button.setEnabled(True)
        self.status.setText(f"error: {exc}")
        try:
            from napari.utils.notifications import show_error

            show_error(str(exc))
        except Exception:
            pass

    def _on_done(self, result: dict[str, Any]) -> None:
        from ..apt.spectrum import plot_spectrum

        self.compute_button.setEnabled(True)
        self.result = result
        vox, ranges, cloud = result["vox"], result["ranges"], result["cloud"]
        self._ranges = ranges
        elements = [e for e in self.selected_elements() if e in vox.elements] or vox.elements
        name = Path(cloud.source or "cloud").name
        if self.viewer is not None:
            kwargs = vox.grid.layer_kwargs()
            for el in elements:
                key = f"{name} {el} at.%"
                data = vox.composition(el)
                layer = self.layers.get(key)
                if (
                    layer is None or layer not in self.viewer.layers
                ) and key in self.viewer.layers:
                    layer = self.viewer.layers[key]  # e.g. made by the reader: update it
                    self.layers[key] = layer
                if layer is not None and layer in self.viewer.layers:
                    layer.data = data
                    layer.scale = kwargs["scale"]
                    layer.translate = kwargs["translate"]
                else:
                    self.layers[key] = self.viewer.add_image(
                        data,
                        name=key,
                        colormap="magma",
                        contrast_limits=(0.0, 100.0),
                        blending="additive",
                        metadata={
                            "element": el,
                            "grid": vox.grid.to_dict(),
                            "range_file": ranges.source,
                        },
                        **kwargs,
                    )
            self._apply_slicing()
        edges, counts = result["spectrum"]
        plot_spectrum(self.ax, edges, counts, ranges)
        self.ax.set_title(f"{name}: {cloud.n_ions:,} ions", fontsize="small")
        self.canvas.draw()  # synchronous: a deferred draw can outlive a closed dock
        d = vox.delocalization_nm
        self.status.setText(
            f"{cloud.n_ions:,} ions; grid {vox.shape} (z, y, x) of {vox.grid.spacing[0]:g} nm"
            + (f"; delocalization z, y, x = {d} nm" if d else "")
        )

    def _apply_slicing(self) -> None:
        """Make the chosen axis the slider axis and average layers over the slab."""
        if self.viewer is None or not self.layers:
            return
        axis = "zyx".index(self.axis_combo.currentText())
        ndim = self.viewer.dims.ndim
        if ndim < 3:
            return
        lead = ndim - 3
        order = list(range(lead)) + [lead + axis] + [lead + a for a in range(3) if a != axis]
        self.viewer.dims.order = tuple(order)
        thickness = float(self.thickness_spin.value())
        th = list(self.viewer.dims.thickness)
        th[lead + axis] = max(thickness, 1e-6)
        self.viewer.dims.thickness = tuple(th)
        for layer in self.layers.values():
            if layer in self.viewer.layers:
                layer.projection_mode = "mean" if thickness > 0 else "none"
