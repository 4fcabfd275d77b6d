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
from ..simulate.workflow import build_structure, simulate_scene
from ._dock import Dock
from ._layers import layer_kwargs

if TYPE_CHECKING:
    import napari

__all__ = ["HRTEMWidget", "build_structure", "simulate_scene"]


def _device_choices() -> list[str]:
    import sys

    out = ["cpu", "numpy", "auto"]
    torch = sys.modules.get("torch")  # only if already imported: no multi-second import here
    try:
        if torch is not None and torch.cuda.is_available():
            out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception:  # a broken CUDA setup: CPU choices only
        pass
    try:
        from ..core.opencl import list_devices

        out += [f"opencl:{d.index}" for d in list_devices()[0]]
    except Exception:  # no OpenCL runtime
        pass
    return out


def _simulate_job(
    scene, structure: dict, params: dict, label_method: str, optics: dict, dose, progress=None
):
    """Build the scene if needed, simulate it and make the first image (one background job)."""
    from ..simulate.workflow import image

    if scene is None:
        scene = build_structure(progress=progress, **structure)
    simulation = simulate_scene(scene, label_method=label_method, progress=progress, **params)
    return simulation, image(simulation, dose=dose, rng=0, **optics)


#: Parameters of the structure (a change makes the built scene stale).
_STRUCTURE_PARAMS = (
    "element", "shape", "diameter", "particles", "defect", "orientation", "substrate",
    "extent", "placement", "seed",
)  # fmt: skip


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
        from ..simulate.structures import SHAPES

        self.scene = None
        self.simulation = None
        self.layers = self.own_layers  # role -> this dock's layer

        self.add_section("Structure")
        p = self.add_param
        p(
            "element",
            "Au",
            tooltip="chemical symbol of the particles (fcc metals: Au, Ag, Pt, ...)",
        )
        p("shape", "sphere", choices=list(SHAPES),
          tooltip="particle shape: a sphere cut from the crystal or a Wulff-type polyhedron")  # fmt: skip
        p("diameter", 30.0, min=5.0, max=200.0, step=1.0, label="diameter (Å)",
          tooltip="particle diameter in Å")  # fmt: skip
        p("particles", 1, min=1, max=20,
          tooltip="number of particles, placed at random without overlap")  # fmt: skip
        p("defect", "none", choices=["none", "twin", "stacking_fault"],
          tooltip="one {111} planar defect through the particle (spheres only)")  # fmt: skip
        p("extent", 48.0, min=10.0, max=400.0, step=4.0, label="field of view (Å)",
          tooltip="side of the square simulation cell in Å")  # fmt: skip
        with self.advanced("Advanced structure"):
            p("orientation", "1 1 0",
              tooltip="zone axis along the beam as 'u v w' (e.g. '1 1 0'), or 'random'")  # fmt: skip
            p("substrate", 20.0, min=0.0, max=200.0, step=5.0, label="a-C thickness (Å)",
              tooltip="thickness of the amorphous carbon support in Å (0 = none)")  # fmt: skip
            p("placement", "on", choices=["on", "embedded"],
              tooltip="particles on the carbon's entrance surface, or sunk 5 Å into it")  # fmt: skip
            p("seed", 0, min=0, max=2**31 - 1,
              tooltip="random seed of the structure, the phonons and the noise (same seed, same result)")  # fmt: skip
        self.build_button = self.add_button(
            "Build structure",
            self.build,
            tooltip="build the scene in the background",
            footer=False,
        )
        self.structure_label = self.add_label("no structure yet: Simulate builds one")
        self._scene_params: dict | None = None  # what self.scene was built from
        self._pending_params: dict | None = None
        for name in _STRUCTURE_PARAMS:
            self.params[name].changed.connect(self._structure_changed)

        self.add_section("Simulation")
        p("energy", 200.0, min=20.0, max=1000.0, step=10.0, label="energy (kV)",
          tooltip="accelerating voltage in kV")  # fmt: skip
        p("sampling", 0.125, min=0.02, max=0.5, step=0.005, label="sampling (Å)",
          tooltip="multislice pixel size in Å; finer is more accurate and slower (0.1-0.2 Å)")  # fmt: skip
        with self.advanced("Advanced simulation"):
            p("slice_thickness", 2.0, min=0.2, max=20.0, step=0.5, label="slice thickness (Å)",
              tooltip="thickness of one multislice slice in Å (1-2 Å is typical)")  # fmt: skip
            p("phonons", 1, min=1, max=50, label="frozen phonons",
              tooltip="number of thermally displaced configurations averaged (1 = static lattice)")  # fmt: skip
            p("device", "cpu", choices=_device_choices(),
              tooltip="multislice backend: cpu (torch/MKL FFTs), numpy, auto (fastest measured), "
              "cuda:N or opencl:N")  # fmt: skip
            p("label_method", "exit_wave", choices=["exit_wave", "atoms"], label="labels",
              tooltip="exit_wave: phase > pi/12 of the particle-only exit wave (Rangel DaCosta 2024); "
              "atoms: within 1.5 Å of the projected particle atoms")  # fmt: skip
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

    def structure_params(self) -> dict:
        """:func:`~napari_interfaces.simulate.structures.build_scene` keyword arguments."""
        orient = str(self._v("orientation")).strip() or "random"
        if orient not in ("random", "none"):
            try:
                axis = tuple(int(x) for x in orient.replace(",", " ").split())
            except ValueError:
                axis = ()
            if len(axis) != 3 or not any(axis):
                raise ParameterError(
                    "orientation", f"give a zone axis 'u v w' or 'random', got {orient!r}"
                )
            orient = axis
        defect = self._v("defect")
        extent = float(self._v("extent"))
        return dict(
            extent=(extent, extent),
            substrate_thickness=float(self._v("substrate")),
            n_particles=int(self._v("particles")),
            element=str(self._v("element")).strip() or "Au",
            shape=self._v("shape"),
            particle_diameter=float(self._v("diameter")),
            defects=None if defect == "none" else defect,
            orientation=orient,
            placement=self._v("placement"),
            rng=int(self._v("seed")),
        )

    def sim_params(self) -> dict:
        """:class:`~napari_interfaces.simulate.hrtem.HRTEMSimulator` keyword arguments."""
        return dict(
            energy_kv=float(self._v("energy")),
            sampling=float(self._v("sampling")),
            slice_thickness=float(self._v("slice_thickness")),
            frozen_phonons=int(self._v("phonons")),
            seed=int(self._v("seed")),
            device=self._v("device"),
        )

    def optics(self) -> dict:
        """CTF fields of the imaging sliders."""
        return dict(
            defocus=float(self._v("defocus")),
            cs=float(self._v("cs")) * 1e4,
            focal_spread=float(self._v("focal_spread")),
        )

    # -- actions ---------------------------------------------------------------
    def build(self):
        """Build the structure in the background; returns the job."""
        params = self.structure_params()
        self._pending_params = params
        return self.run_job(build_structure, on_done=self._built,
                            description="HRTEM structure", **params)  # fmt: skip

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
        rebuild = self.scene is None or current != self._scene_params
        self._pending_params = current
        if rebuild and self.scene is not None:
            self.structure_label.value = "structure parameters changed: rebuilding"
        return self.run_job(
            _simulate_job, None if rebuild else self.scene, current if rebuild else {}, self.sim_params(), self._v("label_method"),
            self.optics(), self.dose_value(), on_done=self._simulated,
            description="HRTEM multislice",
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
        from ..simulate.workflow import image

        self.run_latest(
            "image", image, self.simulation, dose=self.dose_value(), rng=0,
            on_done=self._show_image, **self.optics(),
        )  # fmt: skip

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
