"""npe2 sample data for the HRTEM simulator: a small simulated Au particle."""

from __future__ import annotations

from typing import Any

__all__ = ["sample_hrtem_particle"]


def sample_hrtem_particle() -> list[tuple[Any, dict, str]]:
    """A 2.4 nm Au particle on 1.5 nm a-C ([110], 200 kV, 0.15 Å): image + labels.

    Both layers carry ``scale`` in Å, ``units`` ``("Å", "Å")`` and
    ``metadata["pixel_size"]`` (Å).
    """
    from ..simulate.demo import hrtem_layers
    from ..simulate.hrtem import HRTEMSimulator, make_labels
    from ..simulate.structures import build_scene

    scene = build_scene(extent=(36.0, 36.0), substrate_thickness=15.0, particle_diameter=24.0,
                        orientation=(1, 1, 0), rng=3)  # fmt: skip
    sim = HRTEMSimulator(scene.atoms, scene.particles, sampling=0.15, device="numpy")
    ctf = sim.ctf(defocus=-60, cs=-2e5, focal_spread=20, aperture_mrad=25)
    img = sim.image(ctf, dose=3000, rng=0)
    _, inst = make_labels(sim, "exit_wave")
    layers = hrtem_layers(img.data, inst, img.grid, prefix="HRTEM")
    layers[0][1]["name"] = "HRTEM Au particle"
    for _data, kw, kind in layers[1:]:  # "<what> [<source>]", the plugin's naming pattern
        if kind == "labels":
            kw["name"] = "labels [HRTEM Au particle]"
    return layers
