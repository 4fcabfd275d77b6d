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
    from ..simulate.workflow import HRTEMParams, StructureParams, simulate_hrtem

    structure = StructureParams(extent=(36.0, 36.0), substrate_thickness=15.0,
                                particle_diameter=(24.0,), orientation="1 1 0", seed=3)  # fmt: skip
    params = HRTEMParams(sampling=0.15, device="numpy", defocus=-60, cs=-2e5, focal_spread=20,
                         aperture_mrad=25, dose=3000, seed=0)  # fmt: skip
    out = simulate_hrtem(structure, params, rng=0)
    img, inst = out.image, out.instances
    layers = hrtem_layers(img.data, inst, img.grid, prefix="HRTEM")
    layers[0][1]["name"] = "HRTEM Au particle"
    for _data, kw, kind in layers[1:]:  # "<what> [<source>]", the plugin's naming pattern
        if kind == "labels":
            kw["name"] = "labels [HRTEM Au particle]"
    return layers
