"""The "HRTEM simulator" dock.

1. **Structure**: element, shape, diameter, {111} defect, orientation, number
   of particles, amorphous-carbon substrate thickness and field of view.
   **Build** makes the scene in the background and shows its atoms as a 3D
   Points layer (Au gold, C grey; toggle napari's 3D view to rotate).
2. **Simulate**: energy, sampling, slice thickness, frozen phonons and the
   compute device. **Simulate** runs the multislice (background job with a
   progress bar and Cancel) and adds an Image layer and a Labels layer
   (per-particle labels from the particle-only exit wave, or from the
   projected atoms).
3. **Imaging** sliders (defocus, Cs, focal spread, dose) re-image from the
   cached exit wave immediately; nothing is re-simulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ._jobs import run_job

if TYPE_CHECKING:
    import napari

__all__ = ["HRTEMWidget", "build_structure", "simulate_scene"]


def build_structure(params: dict, progress=None):
    """Engine work of **Build**: a :class:`~napari_interfaces.simulate.structures.Scene`."""
    from ..core.progress import as_progress
    from ..simulate.structures import build_scene

    progress = as_progress(progress)
    progress.start(None, "building structure")
    return build_scene(**params)


def simulate_scene(scene, params: dict, label_method: str = "exit_wave", progress=None):
    """Engine work of **Simulate**: a simulator with cached exit waves and labels."""
    from ..simulate.hrtem import HRTEMSimulator, make_labels

    sim = HRTEMSimulator(scene.atoms, scene.particles, **params)
    sim.exit_waves(progress)
    mask, inst = make_labels(sim, label_method, progress=progress)
    return sim, inst


def _dspin(lo, hi, val, step=1.0, decimals=1, suffix=""):
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(val)
    if suffix:
        w.setSuffix(" " + suffix)
    return w


class _Slider(QWidget):
    """A labelled integer slider mapped to a float value."""

    def __init__(self, lo: float, hi: float, val: float, step: float, fmt: str) -> None:
        super().__init__()
        self.lo, self.step, self.fmt = lo, step, fmt
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, int(round((hi - lo) / step)))
        self.label = QLabel()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider)
        lay.addWidget(self.label)
        self.slider.valueChanged.connect(self._relabel)
        self.set_value(val)

    def value(self) -> float:
        return self.lo + self.slider.value() * self.step

    def set_value(self, v: float) -> None:
        self.slider.setValue(int(round((v - self.lo) / self.step)))
        self._relabel()

    def _relabel(self, *_: Any) -> None:
        self.label.setText(self.fmt.format(self.value()))


class HRTEMWidget(QWidget):
    """Dock widget; see the module docs. ``sync = True`` runs jobs inline (tests)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.sync = False
        self.job = None
        self.scene = None
        self.sim = None
        self.labels = None
        self.layers: dict[str, Any] = {}
        lay = QVBoxLayout(self)

        box = QGroupBox("Structure")
        f = QFormLayout(box)
        self.element = QLineEdit("Au")
        self.shape = QComboBox()
        from ..simulate.structures import SHAPES

        self.shape.addItems(SHAPES)
        self.diameter = _dspin(5, 200, 30, 1, 1, "Å")
        self.n_particles = QSpinBox()
        self.n_particles.setRange(1, 20)
        self.defect = QComboBox()
        self.defect.addItems(["none", "twin", "stacking_fault"])
        self.orientation = QLineEdit("1 1 0")
        self.orientation.setToolTip("'random' or a zone axis like '1 1 0'")
        self.substrate = _dspin(0, 200, 20, 5, 1, "Å")
        self.extent = _dspin(10, 400, 48, 4, 1, "Å")
        self.placement = QComboBox()
        self.placement.addItems(["on", "embedded"])
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        for name, w in [("element", self.element), ("shape", self.shape),
                        ("diameter", self.diameter), ("particles", self.n_particles),
                        ("defect", self.defect), ("orientation", self.orientation),
                        ("a-C thickness", self.substrate), ("field of view", self.extent),
                        ("placement", self.placement), ("seed", self.seed)]:  # fmt: skip
            f.addRow(name, w)
        self.build_btn = QPushButton("Build structure")
        self.build_btn.clicked.connect(self.build)
        f.addRow(self.build_btn)
        lay.addWidget(box)

        box = QGroupBox("Simulation")
        f = QFormLayout(box)
        self.energy = _dspin(20, 1000, 200, 10, 0, "kV")
        self.sampling = _dspin(0.02, 0.5, 0.125, 0.005, 3, "Å")
        self.slice = _dspin(0.2, 20, 2, 0.5, 2, "Å")
        self.phonons = QSpinBox()
        self.phonons.setRange(1, 50)
        self.device = QComboBox()
        self.device.addItems(["cpu", "numpy", "auto"])
        try:
            import torch

            if torch.cuda.is_available():
                self.device.addItems([f"cuda:{i}" for i in range(torch.cuda.device_count())])
        except Exception:
            pass
        try:
            from ..core.opencl import list_devices

            self.device.addItems([f"opencl:{d.index}" for d in list_devices()[0]])
        except Exception:
            pass
        self.label_method = QComboBox()
        self.label_method.addItems(["exit_wave", "atoms"])
        self.label_method.setToolTip(
            "exit_wave: phase > pi/12 of the particle-only exit wave (paper); "
            "atoms: within 1.5 Å of projected particle atoms"
        )
        for name, w in [("energy", self.energy), ("sampling", self.sampling),
                        ("slice thickness", self.slice), ("frozen phonons", self.phonons),
                        ("device", self.device), ("labels", self.label_method)]:  # fmt: skip
            f.addRow(name, w)
        row = QHBoxLayout()
        self.sim_btn = QPushButton("Simulate")
        self.sim_btn.clicked.connect(self.simulate)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        row.addWidget(self.sim_btn)
        row.addWidget(self.cancel_btn)
        f.addRow(row)
        lay.addWidget(box)

        box = QGroupBox("Imaging (live, from the cached exit wave)")
        f = QFormLayout(box)
        self.defocus = _Slider(-500, 500, -60, 5, "{:.0f} Å")
        self.cs = _Slider(-50, 50, -20, 0.5, "{:.1f} µm")
        self.focal = _Slider(0, 100, 20, 1, "{:.0f} Å")
        self.dose = _Slider(0, 6, 0, 0.1, "")
        self.dose.fmt = "{:.0f}"
        self.dose._relabel = self._dose_label
        self.dose.slider.valueChanged.connect(self._dose_label)
        self._dose_label()
        for name, w in [("defocus (= -C10)", self.defocus), ("Cs", self.cs),
                        ("focal spread σ", self.focal), ("dose", self.dose)]:  # fmt: skip
            f.addRow(name, w)
            w.slider.valueChanged.connect(self.update_image)
        lay.addWidget(box)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)

    # -- helpers -------------------------------------------------------------
    def dose_value(self) -> float | None:
        v = self.dose.value()
        return None if v <= 0 else float(10**v)

    def _dose_label(self, *_: Any) -> None:
        d = self.dose_value()
        self.dose.label.setText("no noise" if d is None else f"{d:.0f} e/Å²")

    def structure_params(self) -> dict:
        orient = self.orientation.text().strip() or "random"
        if orient != "random":
            orient = tuple(int(x) for x in orient.replace(",", " ").split())
        defect = self.defect.currentText()
        return dict(
            extent=(self.extent.value(), self.extent.value()),
            substrate_thickness=self.substrate.value(),
            n_particles=self.n_particles.value(),
            element=self.element.text().strip() or "Au",
            shape=self.shape.currentText(),
            particle_diameter=self.diameter.value(),
            defects=None if defect == "none" else defect,
            orientation=orient,
            placement=self.placement.currentText(),
            rng=self.seed.value(),
        )

    def sim_params(self) -> dict:
        return dict(
            energy_kv=self.energy.value(),
            sampling=self.sampling.value(),
            slice_thickness=self.slice.value(),
            frozen_phonons=self.phonons.value(),
            seed=self.seed.value(),
            device=self.device.currentText(),
        )

    def optics(self) -> dict:
        return dict(
            defocus=self.defocus.value(),
            cs=self.cs.value() * 1e4,
            focal_spread=self.focal.value(),
            dose=self.dose_value(),
            rng=0,
        )

    def _set_layer(self, key: str, kind: str, data, **kwargs):
        if self.viewer is None:
            return None
        layer = self.layers.get(key)
        if layer is not None and layer in self.viewer.layers:
            layer.data = data
            for k, v in kwargs.items():
                if k != "name":
                    setattr(layer, k, v)
            return layer
        layer = getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        self.layers[key] = layer
        return layer

    def _error(self, exc: BaseException) -> None:
        self.status.setText(f"error: {exc}")

    # -- actions -------------------------------------------------------------
    def build(self) -> None:
        try:
            params = self.structure_params()
        except ValueError as exc:
            self.status.setText(f"error: bad orientation ({exc})")
            return
        self.status.setText("building structure ...")
        self.job = run_job(build_structure, params, on_done=self._built, on_error=self._error,
                           description="HRTEM structure", sync=self.sync)  # fmt: skip

    def _built(self, scene) -> None:
        self.scene = scene
        self.sim = None
        pos = scene.atoms.positions[:, ::-1]
        heavy = scene.atoms.numbers != 6
        colors = np.where(heavy[:, None], [[1.0, 0.8, 0.0, 1.0]], [[0.55, 0.55, 0.55, 0.6]])
        self._set_layer("atoms", "points", pos, name="HRTEM atoms", size=1.2,
                        face_color=colors, border_width=0)  # fmt: skip
        self.status.setText(
            f"{len(scene.atoms)} atoms ({scene.info['n_particle_atoms']} in particles); "
            "press Simulate"
        )

    def simulate(self) -> None:
        if self.scene is None:
            self.build()
            if self.scene is None:
                if self.sync:
                    return
                # build runs in the background: chain the simulation
                job = self.job
                job.worker.returned.connect(lambda *_: self.simulate())
                return
        self.status.setText("simulating ...")
        self.job = run_job(simulate_scene, self.scene, self.sim_params(),
                           self.label_method.currentText(), on_done=self._simulated,
                           on_error=self._error, description="HRTEM multislice",
                           sync=self.sync)  # fmt: skip

    def _simulated(self, result) -> None:
        self.sim, self.labels = result
        ew = self.sim.exit_waves()
        t = ", ".join(f"{k} {v:.2f} s" for k, v in ew.timings.items())
        self.status.setText(f"exit wave {ew.shape[1]}x{ew.shape[0]} ({ew.backend}): {t}")
        self.update_image()
        ds = ew.sampling
        self._set_layer("labels", "labels", self.labels, name="HRTEM labels", scale=(ds[1], ds[0]),
                        opacity=0.4)  # fmt: skip

    def update_image(self, *_: Any) -> None:
        """Re-image from the cached exit wave with the slider values."""
        if self.sim is None:
            return
        result = self.sim.image(**self.optics())
        img = result.data
        ds = (result.grid.spacing[1], result.grid.spacing[0])
        self._set_layer("image", "image", img, name="HRTEM image", scale=(ds[1], ds[0]),
                        colormap="gray")  # fmt: skip
        layer = self.layers.get("image")
        if layer is not None:
            layer.contrast_limits = (float(img.min()), float(img.max()) + 1e-6)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
