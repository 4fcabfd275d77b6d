"""HRTEM simulation engine (no Qt, no napari): structures -> multislice -> images + labels.

The public API is exported lazily (scikit-image style): ``from
napari_interfaces.simulate import HRTEMSimulator`` imports only
:mod:`.hrtem`, and ``import napari_interfaces.simulate`` imports nothing
heavy. (The function :func:`.multislice.multislice` is not re-exported: its
name is its module's.)

========================  ==================================================
``build_scene``           particles on amorphous carbon (:mod:`.structures`)
``nanoparticle``          one nanoparticle (:mod:`.structures`)
``HRTEMSimulator``        structure -> cached exit waves -> images (:mod:`.hrtem`)
``simulate_exit_waves``   multislice exit waves (:mod:`.hrtem`)
``simulate_sample``       one labelled sample (:mod:`.workflow`)
``make_labels``           ground-truth labels of a simulation (:mod:`.hrtem`)
``CTF``                   contrast transfer function (:mod:`.ctf`)
``ExitWaves``             exit waves + sampling (:mod:`.multislice`)
``PeriodicGrid``          the simulation box (:mod:`.potential`)
``ProjectedPotential``    potential slices (:mod:`.potential`)
``wavelength``            electron wavelength, Å (:mod:`.constants`)
``DatabaseSpec``          database recipe (:mod:`.spec`)
``load_spec``             read a spec (:mod:`.spec`)
``generate_database``     simulate a database into zarr (:mod:`.database`)
``read_sample``           one sample of a database (:mod:`.database`)
========================  ==================================================
"""

from __future__ import annotations

from ..core.lazy import attach

_EXPORTS = {
    "build_scene": "structures",
    "nanoparticle": "structures",
    "Scene": "structures",
    "HRTEMSimulator": "hrtem",
    "SimulatedSample": "workflow",
    "make_labels": "hrtem",
    "simulate_exit_waves": "hrtem",
    "simulate_sample": "workflow",
    "CTF": "ctf",
    "ExitWaves": "multislice",
    "PeriodicGrid": "potential",
    "ProjectedPotential": "potential",
    "wavelength": "constants",
    "DatabaseSpec": "spec",
    "load_spec": "spec",
    "generate_database": "database",
    "open_database": "database",
    "read_sample": "database",
    "completed_indices": "database",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
