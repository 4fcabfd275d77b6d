"""The "HRTEM simulator" dock: a magicgui form over :mod:`napari_interfaces.simulate.workflow`.

1. **Structure**: element, shape, diameter, {111} defect, orientation, number
   of particles, amorphous-carbon substrate thickness and field of view.
   **Build structure** makes the scene in the background and shows its atoms
   as a 2D Points layer (projected along the beam, Au gold, C grey; hidden by
   default; their depth is the ``z`` feature).
2. **Simulation**: energy, sampling, slice thickness, frozen phonons and the
   compute device. **Simulate** runs the multislice (background job with a
   progress bar in napari's activity panel and Cancel; the button is
   disabled while it runs) and adds an Image layer and a Labels layer
   (per-particle labels from the particle-only exit wave, or from the
   projected atoms). It builds the structure first when there is none.
3. **Imaging** sliders (defocus, Cs, focal spread, dose) re-image from the
   cached exit wave, debounced and off the GUI thread (newest value wins);
   nothing is re-simulated.

Every layer carries ``scale`` in Å, ``units`` Å and ``metadata["pixel_size"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import ParameterError
from ..simulate.workflow import (
    HRTEMParams,
    StructureParams,
    build_structure,
    image,
    simulate_hrtem,
)
from ._dock import Dock
from ._form import SpecForm
from ._layers import layer_kwargs

if TYPE_CHECKING:
    import napari

__all__ = ["HRTEMWidget", "build_structure", "simulate_hrtem"]


def _device_choices() -> list[str]:
    from ..simulate.backends import device_choices

    return device_choices()


def _simulate_job(scene, structure, params, progress=None):
    """Build the scene if needed, simulate it and make the first image (one background job).

    The one HRTEM composition (:func:`~napari_interfaces.simulate.workflow.simulate_hrtem`);
    the first image's noise is seeded 0, like the live re-imaging.
    """
    if scene is None:
        scene = build_structure(structure, progress=progress)
    out = simulate_hrtem(scene, params, rng=0, progress=progress)
    return out.simulation, out.image


#: The dock's starting values (a small, quick scene; the specs' defaults are the CLI's).
_STRUCTURE_PRESET = dict(
    extent=(48.0,), particle_diameter=(30.0,), substrate_thickness=20.0, orientation="1 1 0",
    seed=0,
)  # fmt: skip
#: Simulation fields the dock shows as live imaging sliders or fills itself.
_LIVE = ("defocus", "cs", "focal_spread", "dose", "device", "seed")


class HRTEMWidget(Dock):
    """Build a nanoparticle scene, simulate it and image it live (see the module docs).

    Parameters
    ----------
    napari_viewer : napari.Viewer, optional
    sync : bool
        Run jobs in the calling thread (tests).
    """

    title = "HRTEM simulator"

    def __init__(self, napari_viewer: napari.Viewer | None = None, *, sync: bool = False) -> None:
        super().__init__(napari_viewer, sync=sync)
        self.scene = None
        self.simulation = None
        self.layers = self.own_layers  # role -> this dock's layer

        self.add_section("Structure")
        self.structure_form = SpecForm(self, StructureParams, advanced_title="Advanced structure")
        self.structure_form.set(**_STRUCTURE_PRESET)
        self.build_button = self.add_button(
            "Build structure",
            self.build,
            tooltip="build the scene in the background",
            footer=False,
        )
        self.structure_label = self.add_label("no structure yet: Simulate builds one")
        self._scene_params: StructureParams | None = None  # what self.scene was built from
        self._pending_params: StructureParams | None = None
        for w in self.structure_form.widgets.values():
            w.changed.connect(self._structure_changed)

        self.add_section("Simulation")
        self.sim_form = SpecForm(
            self, HRTEMParams, skip=_LIVE, advanced_title="Advanced simulation"
        )
        self.sim_form.set(sampling=0.125)
        p = self.add_param
        with self.advanced("Compute"):
            p("device", "cpu", choices=_device_choices(),
              tooltip="multislice backend: cpu (torch/MKL FFTs), numpy, auto (fastest measured), "
              "cuda:N or opencl:N")  # fmt: skip
        self.simulate_button = self.add_button(
            "Simulate", self.simulate, footer=True,
            tooltip="multislice exit waves + labels in the background (builds the structure first "
            "if needed)",
        )  # fmt: skip

        self.add_section("Imaging (live, from the cached exit wave)")
        live = self.update_image
        p("defocus", -60.0, min=-500.0, max=500.0, step=5.0, widget_type="FloatSlider",
          label="defocus (Å)", on_change=live,
          tooltip="defocus = -C10 in Å; positive is underfocus (Scherzer at 200 kV, Cs 1.3 mm: 700 Å)")  # fmt: skip
        p("cs", -20.0, min=-50.0, max=50.0, step=0.5, widget_type="FloatSlider",
          label="Cs (µm)", on_change=live,
          tooltip="spherical aberration C30 in µm (aberration-corrected: a few µm)")  # fmt: skip
        p("focal_spread", 20.0, min=0.0, max=100.0, step=1.0, widget_type="FloatSlider",
          label="focal spread σ (Å)", on_change=live,
          tooltip="standard deviation of the defocus (temporal coherence) in Å")  # fmt: skip
        p("dose", 0.0, min=0.0, max=6.0, step=0.1, widget_type="FloatSlider",
          label="log₁₀ dose (e/Å²)", on_change=live,
          tooltip="electron dose as log10(e/Å²): 3 = 1000 e/Å² with Poisson noise; 0 = no noise")  # fmt: skip
        self.dose_label = self.add_label(self._dose_text())
        self.params["dose"].changed.connect(lambda *_: self._update_dose_label())

    # -- parameters ------------------------------------------------------------
    def _v(self, name: str) -> Any:
        return self.params[name].value

    def dose_value(self) -> float | None:
        """The dose in e/Å² (``None``: noise-free)."""
        v = float(self._v("dose"))
        return None if v <= 0 else float(10**v)

    def _dose_text(self) -> str:
        d = self.dose_value()
        return "dose: no noise" if d is None else f"dose: {d:.0f} e/Å²"

    def _update_dose_label(self) -> None:
        self.dose_label.value = self._dose_text()

    def structure_params(self) -> StructureParams:
        """The validated structure spec (a bad value is marked on its field)."""
        return self.structure_form.spec()

    def hrtem_params(self) -> HRTEMParams:
        """The validated simulation spec, with the live sliders, the device and the seed."""
        seed = self.structure_form.value("seed")
        return self.sim_form.spec(
            defocus=float(self._v("defocus")),
            cs=float(self._v("cs")) * 1e4,  # µm -> Å
            focal_spread=float(self._v("focal_spread")),
            dose=self.dose_value(),
            device=self._v("device"),
            seed=seed,
        )

    # -- actions ---------------------------------------------------------------
    def build(self):
        """Build the structure in the background; returns the job."""
        params = self.structure_params()
        self._pending_params = params
        return self.run_job(build_structure, params, on_done=self._built,
                            description="HRTEM structure")  # fmt: skip

    @property
    def structure_stale(self) -> bool:
        """Whether the structure parameters changed since the scene was built."""
        if self.scene is None:
            return True
        try:
            return self.structure_params() != self._scene_params
        except ParameterError:
            return True

    def _structure_changed(self, *_: Any) -> None:
        if self.scene is not None and self.structure_stale:
            self.structure_label.value = (
                "⚠ structure parameters changed: the built structure is stale; "
                "Simulate rebuilds it (or press Build structure)"
            )
        elif self.scene is not None:
            self.structure_label.value = "structure up to date"

    def _built(self, scene) -> None:
        self.scene = scene
        self._scene_params = self._pending_params
        self.structure_label.value = "structure up to date"
        self.simulation = None
        self._show_atoms(scene)
        self.set_status(
            f"{len(scene.atoms)} atoms ({scene.info['n_particle_atoms']} in particles); "
            "press Simulate"
        )

    def simulate(self):
        """Simulate; (re)builds the structure first when none is built or it is stale.

        Returns the job.
        """
        current = self.structure_params()
        params = self.hrtem_params()
        rebuild = self.scene is None or current != self._scene_params
        self._pending_params = current
        if rebuild and self.scene is not None:
            self.structure_label.value = "structure parameters changed: rebuilding"
        return self.run_job(
            _simulate_job, None if rebuild else self.scene, current, params,
            on_done=self._simulated, description="HRTEM multislice",
        )  # fmt: skip

    def _simulated(self, result) -> None:
        simulation, first_image = result
        if self.scene is not simulation.scene:
            self.scene = simulation.scene
            self._scene_params = self._pending_params
            self._show_atoms(simulation.scene)
        self.structure_label.value = "structure up to date"
        self.simulation = simulation
        ny, nx = simulation.labels.shape
        t = ", ".join(
            f"{k} {v:.2f} s" for k, v in simulation.timings.items() if isinstance(v, float)
        )
        backend = simulation.simulator.exit_waves().backend
        self.set_status(f"exit wave {nx}x{ny} ({backend}): {t}")
        self._show_image(first_image)
        self.put_layer("labels", simulation.labels, "labels",
                  **self._kwargs(simulation.grid, "labels [HRTEM]", opacity=0.4))  # fmt: skip

    def update_image(self, *_: Any) -> None:
        """Re-image from the cached exit wave (debounced, off the GUI thread)."""
        if self.simulation is None or self.viewer is None:
            return
        try:
            params = self.hrtem_params()
        except ParameterError as exc:
            self.set_status(str(exc))
            return
        self.run_latest("image", image, self.simulation, params, rng=0, on_done=self._show_image)

    # -- layers -----------------------------------------------------------------
    @staticmethod
    def _kwargs(grid, name: str, **extra: Any) -> dict:
        kw = layer_kwargs(grid, name=name, **extra)
        kw["metadata"] = {
            "pixel_size": float(grid.spacing[-1]),
            "pixel_unit": "Å",
            "grid": grid.to_dict(),
        }
        return kw

    def _show_image(self, img) -> None:
        if self.viewer is None:
            return
        data = img.data
        layer = self.put_layer("image", data, "image",
                          **self._kwargs(img.grid, "image [HRTEM]", colormap="gray"))  # fmt: skip
        layer.contrast_limits = (float(data.min()), float(data.max()) + 1e-6)

    def _show_atoms(self, scene) -> None:
        if self.viewer is None:
            return
        pos = np.asarray(scene.atoms.positions)
        heavy = scene.atoms.numbers != 6
        colors = np.where(heavy[:, None], [[1.0, 0.8, 0.0, 1.0]], [[0.55, 0.55, 0.55, 0.6]])
        layer = self.put_layer(
            "atoms", pos[:, 1::-1], "points",  # (y, x) in Å: projected, no z slider
            **layer_kwargs(None, "Å", ndim=2, name="atoms [HRTEM]"),
            size=1.2, border_width=0, visible=False,
        )  # fmt: skip
        layer.features = {"z": pos[:, 2], "element": scene.atoms.get_chemical_symbols()}
        layer.face_color = colors
