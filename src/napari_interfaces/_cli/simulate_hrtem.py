"""``napari-interfaces simulate structure|image``: HRTEM scenes and images.

The options are generated from the workflow specs
(:mod:`napari_interfaces.simulate.workflow`); the work is the one HRTEM
composition, :func:`~napari_interfaces.simulate.workflow.simulate_hrtem`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ._spec import add_command, spec_from_args


def register(groups: dict) -> None:
    from ..simulate.workflow import HRTEMFiles, HRTEMParams, StructureFiles, StructureParams

    sim = groups["simulate"]
    add_command(
        sim,
        "structure",
        run_structure,
        StructureFiles,
        StructureParams,
        help="build a nanoparticle-on-amorphous-carbon scene (.xyz + particle-only file)",
        description="Build nanoparticles (fcc Au by default) on an amorphous carbon substrate "
        "and write the scene plus the particle-only structure (<stem>_particles<suffix>). "
        "Lengths in Å.",
    )

    add_command(
        sim,
        "image",
        run_image,
        HRTEMFiles,
        HRTEMParams,
        help="multislice HRTEM image of a structure (+ exit wave, labels)",
        description="Plane-wave multislice HRTEM simulation of STRUCTURE (any ase-readable "
        "file with an orthorhombic cell; beam along +z). Without --dose the image is "
        "noise-free. Prints the time of each stage.",
    )


def _particles_path(out: Path) -> Path:
    return out.with_name(out.stem + "_particles" + out.suffix)


def plan_structure(args: argparse.Namespace):
    """``(files, params)`` of ``simulate structure``, checked before anything is written."""
    from ..core.outputs import check_output
    from ..simulate.workflow import StructureFiles, StructureParams

    params = spec_from_args(StructureParams, args)
    files = spec_from_args(StructureFiles, args)
    check_output(files.out, overwrite=files.overwrite)
    check_output(_particles_path(files.out), overwrite=files.overwrite)
    return files, params


def run_structure(args: argparse.Namespace) -> int:
    from ..simulate.workflow import build_structure

    t0 = time.perf_counter()
    files, params = plan_structure(args)
    scene = build_structure(params)
    out, pout = scene.write(files.out)
    cell = scene.atoms.cell.lengths()
    print(
        f"scene: {len(scene.atoms)} atoms ({scene.info['n_particle_atoms']} in "
        f"{params.n_particles} particle(s), {scene.info['n_substrate_atoms']} C), cell "
        f"{cell[0]:.1f} x {cell[1]:.1f} x {cell[2]:.1f} Å -> {out}"
    )
    print(f"particle-only structure -> {pout}")
    print(f"time: {time.perf_counter() - t0:.2f} s")
    return 0


def _save(path: str | Path, array, pixel_size=None) -> None:
    """Write .npy or TIFF (with the pixel size in Å, :func:`~napari_interfaces.io.tiff.write_tiff`), atomically.

    The pixel size lets ``napari-interfaces segment`` and the micrograph
    reader rescale to a model's training pixel size without a user value.
    """
    from ..core.outputs import atomic_file
    from ..io.tiff import write_tiff

    p = Path(path)
    if p.suffix.lower() == ".npy":
        with atomic_file(p) as tmp:
            np.save(tmp, array)
    else:
        write_tiff(p, array, pixel_size=pixel_size, unit="Å")


def plan_image(args: argparse.Namespace):
    """``(files, params)`` of ``simulate image``, checked before anything is read or written."""
    from ..core.errors import ParameterError
    from ..core.outputs import check_output
    from ..simulate.workflow import IMAGE_SUFFIXES, HRTEMFiles, HRTEMParams

    params = spec_from_args(HRTEMParams, args)
    files = spec_from_args(HRTEMFiles, args)
    inputs = [files.structure] + ([files.particles] if files.particles else [])
    seen: dict[str, str] = {}
    for name in ("out", "exit_wave", "labels"):
        val = getattr(files, name)
        if val is None:
            continue
        flag = HRTEMFiles.param_of(name).cli_flag
        key = str(val.expanduser().resolve())
        if key in seen:
            raise ParameterError(name, f"{val}: same file as {seen[key]}")
        seen[key] = flag
        check_output(val, inputs, overwrite=files.overwrite, name=flag)
        if val.suffix.lower() not in IMAGE_SUFFIXES:
            raise ParameterError(name, f"{val}: use a .npy or .tif file")
    return files, params


def run_image(args: argparse.Namespace) -> int:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_notice
        return _run_image(args)


def _one_line_notice(message, category, filename, lineno, file=None, line=None) -> None:
    import sys

    print(f"napari-interfaces: notice: {message}", file=sys.stderr)


def _run_image(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..simulate.workflow import particles_for, read_structure, simulate_hrtem

    files, params = plan_image(args)
    t0 = time.perf_counter()
    atoms = read_structure(files.structure)
    labels = files.labels is not None
    particles = particles_for(files.structure, atoms, files.particles) if labels else None
    t_read = time.perf_counter() - t0
    out = simulate_hrtem(
        atoms, params, particles=particles, labels=labels, progress=cli_progress()
    )
    img = out.image
    ew = out.simulation.simulator.exit_waves()
    dy, dx = img.grid.spacing
    _save(files.out, img.data, pixel_size=(dy, dx))
    if files.exit_wave:
        _save(files.exit_wave, ew.waves[0] if ew.waves.shape[0] == 1 else ew.waves)
    if labels:
        _save(files.labels, out.instances.astype(np.int32), pixel_size=(dy, dx))
    timings = {"read": t_read, **out.timings}
    ny, nx = img.data.shape
    data = img.data
    print(
        f"image {ny} x {nx} px at {dx:.4f} Å ({len(atoms)} atoms, {ew.waves.shape[0]} "
        f"configuration(s), backend {ew.backend}) -> {files.out}"
    )
    print(f"intensity min {data.min():.4f} max {data.max():.4f} mean {data.mean():.4f}")
    for k, v in timings.items():
        if isinstance(v, float):
            print(f"  {k:<11s} {v:8.3f} s")
    print(f"  {'total':<11s} {time.perf_counter() - t0:8.3f} s")
    return 0
