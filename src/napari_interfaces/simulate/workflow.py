"""The HRTEM workflows the dock, the CLI and scripts share (no Qt, no napari).

Three steps, each a plain function with a ``progress`` callback that returns
a result object:

1. :func:`build_structure` -> :class:`~.structures.Scene`
   (:func:`~.structures.build_scene`'s parameters);
2. :func:`simulate_scene` -> :class:`HRTEMSimulation`: the simulator with its
   cached exit waves and the per-particle labels on the simulation grid;
3. :func:`image` -> :class:`~napari_interfaces.core.geometry.GriddedArray`:
   an image for one :class:`~.ctf.CTF` and dose, from the cached exit waves
   (cheap: what the dock's defocus/dose sliders call, off the GUI thread).

Example
-------
>>> from napari_interfaces.simulate import workflow
>>> scene = workflow.build_structure(extent=(20, 20), substrate_thickness=0,
...                                  particle_diameter=8, rng=0)          # doctest: +SKIP
>>> sim = workflow.simulate_scene(scene, sampling=0.2, device="numpy")   # doctest: +SKIP
>>> img = workflow.image(sim, defocus=50, dose=1000, rng=0)              # doctest: +SKIP
>>> img.grid.spacing, sim.labels.shape                                     # doctest: +SKIP
((0.2, 0.2), (100, 100))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.geometry import Grid, GriddedArray
from ..core.progress import Progress, as_progress

__all__ = ["HRTEMSimulation", "build_structure", "image", "simulate_scene"]


def build_structure(progress: Progress | None = None, **params: Any):
    """A scene of particles on amorphous carbon (:func:`~.structures.build_scene`)."""
    from .structures import build_scene

    progress = as_progress(progress)
    progress.start(None, "building structure")
    return build_scene(**params)


@dataclass
class HRTEMSimulation:
    """What :func:`simulate_scene` returns.

    Attributes
    ----------
    simulator : HRTEMSimulator
        Holds the cached exit waves: :func:`image` reuses them.
    scene : Scene
    labels : int32 ``(ny, nx)``
        Per-particle instance labels on the simulation grid (0 background).
    grid : Grid
        The simulation grid (axes ``yx``, Å).
    timings : dict
        Seconds per stage.
    """

    simulator: Any
    scene: Any
    labels: np.ndarray
    grid: Grid
    timings: dict = field(default_factory=dict)


def simulate_scene(
    scene,
    *,
    label_method: str = "exit_wave",
    progress: Progress | None = None,
    **params: Any,
) -> HRTEMSimulation:
    """Multislice exit waves of ``scene`` and its labels.

    Parameters
    ----------
    scene : Scene
    label_method : ``"exit_wave"`` or ``"atoms"``
        See :func:`.hrtem.make_labels`.
    progress : Progress, optional
    **params
        :class:`~.hrtem.HRTEMSimulator`'s parameters (``energy_kv``,
        ``sampling``, ``slice_thickness``, ``frozen_phonons``, ``seed``,
        ``device``, ...).
    """
    from .hrtem import HRTEMSimulator, make_labels

    sim = HRTEMSimulator(scene.atoms, scene.particles, **params)
    ew = sim.exit_waves(progress)
    _, inst = make_labels(sim, label_method, progress=progress)
    return HRTEMSimulation(sim, scene, inst, ew.grid, dict(ew.timings))


def image(
    simulation: HRTEMSimulation,
    ctf=None,
    *,
    dose: float | None = None,
    rng: np.random.Generator | int | None = 0,
    progress: Progress | None = None,
    **optics: Any,
) -> GriddedArray:
    """An image from the cached exit waves (see :meth:`.hrtem.HRTEMSimulator.image`).

    ``ctf`` or its fields (``defocus=``, ``cs=``, ``focal_spread=``, ...).
    """
    progress = as_progress(progress)
    progress.check()
    sim = simulation.simulator
    if ctf is None:
        ctf = sim.ctf(**optics)
    return sim.image(ctf, dose=dose, rng=rng)
