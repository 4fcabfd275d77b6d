"""``napari-interfaces simulate structure|image``: HRTEM scenes and images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def register(groups: dict) -> None:
    sim = groups["simulate"]
    p = sim.add_parser(
        "structure",
        help="build a nanoparticle-on-amorphous-carbon scene (.xyz + particle-only file)",
        description="Build nanoparticles (fcc Au by default) on an amorphous carbon substrate "
        "and write the scene plus the particle-only structure (<stem>_particles<suffix>). "
        "Lengths in Å.",
    )
    p.add_argument("--out", required=True, help="output scene file (extended xyz recommended)")
    p.add_argument("--extent", type=float, nargs=2, default=(102.4, 102.4), metavar=("LX", "LY"))
    p.add_argument("--substrate-thickness", type=float, default=50.0, help="Å of a-C (0 = none)")
    p.add_argument("--substrate-density", type=float, default=2.0, help="g/cm3")
    p.add_argument("--particles", type=int, default=1, help="number of particles")
    p.add_argument("--element", default="Au")
    p.add_argument(
        "--shape",
        default="sphere",
        choices=["sphere", "octahedron", "truncated_octahedron", "cuboctahedron",
                 "decahedron", "icosahedron", "wulff"],
    )  # fmt: skip
    p.add_argument(
        "--diameter",
        type=float,
        nargs="+",
        default=[50.0],
        help="Å (one per particle or one for all)",
    )
    p.add_argument("--defect", action="append", choices=["twin", "stacking_fault"],
                   help="{111} planar defect (repeatable; sphere only)")  # fmt: skip
    p.add_argument("--orientation", default="random", help="'random' or a zone axis like '1 1 0'")
    p.add_argument("--placement", default="on", choices=["on", "embedded"])
    p.add_argument("--embed-depth", type=float, default=5.0, help="Å")
    p.add_argument("--min-gap", type=float, default=5.0, help="Å between particles")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run_structure)

    q = sim.add_parser(
        "image",
        help="multislice HRTEM image of a structure (+ exit wave, labels)",
        description="Plane-wave multislice HRTEM simulation of STRUCTURE (any ase-readable "
        "file with an orthorhombic cell; beam along +z). Without --dose the image is "
        "noise-free. Prints the time of each stage.",
    )
    q.add_argument("structure", help="structure file with a cell")
    q.add_argument("--out", required=True, help="image file: .npy or .tif")
    q.add_argument("--energy-kv", type=float, default=200.0)
    q.add_argument("--sampling", type=float, default=0.1, help="pixel size Å (simulation)")
    q.add_argument("--slice-thickness", type=float, default=2.0, help="Å")
    q.add_argument("--parametrization", default="lobato", choices=["lobato", "kirkland"])
    q.add_argument("--defocus", type=float, default=0.0, help="Å, = -C10 (positive = underfocus)")
    q.add_argument(
        "--cs", type=float, default=0.0, help="spherical aberration C30 in Å (1 mm = 1e7)"
    )
    q.add_argument("--aberration", action="append", default=[], metavar="NAME=VALUE",
                   help="other Krivanek coefficient, e.g. C12=20 phi12=0.5 C50=5e7 (Å, rad)")  # fmt: skip
    q.add_argument("--focal-spread", type=float, default=0.0, help="Å, std-dev of defocus")
    q.add_argument("--focal-mode", default="envelope", choices=["envelope", "sum"])
    q.add_argument("--source-spread-mrad", type=float, default=0.0)
    q.add_argument("--aperture-mrad", type=float, default=None)
    q.add_argument("--dose", type=float, default=None, help="e/Å² (Poisson noise)")
    q.add_argument("--mtf", type=float, nargs=3, default=None, metavar=("Q0", "C", "POWER"),
                   help="detector MTF (1-c)/(1+(q/q0)^power)+c, q in Nyquist units")  # fmt: skip
    q.add_argument("--median", type=int, default=0, help="median filter size (px)")
    q.add_argument("--pixel-size", type=float, default=None, help="resample the image to this Å")
    q.add_argument("--frozen-phonons", type=int, default=1)
    q.add_argument(
        "--device",
        default=None,
        help="auto | cpu | numpy | torch | cuda[:N] | opencl:N (default: config)",
    )
    q.add_argument("--exit-wave", default=None, metavar="WAVE.npy")
    q.add_argument("--labels", default=None, metavar="LABELS.tif",
                   help="per-particle instance labels (0 = background)")  # fmt: skip
    q.add_argument("--label-method", default="exit_wave", choices=["exit_wave", "atoms"])
    q.add_argument("--particles", default=None,
                   help="particle-only structure (default: <stem>_particles<suffix> or particle_id>0)")  # fmt: skip
    q.add_argument("--seed", type=int, default=None)
    q.add_argument("--overwrite", action="store_true", help="replace existing output files")
    q.set_defaults(func=run_image)


def _particles_path(out: Path) -> Path:
    return out.with_name(out.stem + "_particles" + out.suffix)


def _check_element(element: str) -> None:
    """``--element``: a chemical symbol with a reference crystal structure in ase."""
    from ase.data import atomic_numbers, reference_states

    from ..core.errors import ParameterError

    z = atomic_numbers.get(str(element))
    if z is None or not 0 < z < len(reference_states):
        raise ParameterError("--element", f"{element!r} is not a chemical symbol (e.g. Au, Pt)")
    if not reference_states[z] or reference_states[z].get("symmetry") not in (
        "fcc",
        "bcc",
        "hcp",
        "diamond",
    ):
        raise ParameterError(
            "--element", f"{element!r} has no reference crystal structure to build particles from"
        )


def validate_structure(args: argparse.Namespace) -> dict:
    """All ``simulate structure`` parameters checked in one place; ``build_scene`` kwargs."""
    from ..core import params as P
    from ..core.errors import ParameterError
    from ..core.outputs import check_output

    for v in args.extent:
        P.positive("--extent", v, maximum=1e4)
    P.non_negative("--substrate-thickness", args.substrate_thickness, maximum=1e4)
    P.positive("--substrate-density", args.substrate_density, maximum=30.0)
    P.positive("--particles", args.particles, integer=True, maximum=1000)
    for d in args.diameter:
        P.positive("--diameter", d, maximum=1e4)
    if len(args.diameter) not in (1, args.particles):
        raise ParameterError(
            "--diameter", f"give one value or one per particle ({args.particles}), "
            f"got {len(args.diameter)}"
        )  # fmt: skip
    P.non_negative("--embed-depth", args.embed_depth, maximum=1e4)
    P.non_negative("--min-gap", args.min_gap, maximum=1e4)
    orientation = args.orientation
    if orientation not in ("random", "none"):
        try:
            orientation = tuple(int(x) for x in orientation.replace(",", " ").split())
        except ValueError:
            orientation = ()
        if len(orientation) != 3 or not any(orientation):
            raise ParameterError(
                "--orientation", f"must be 'random', 'none' or a zone axis 'u v w', got {args.orientation!r}"
            )  # fmt: skip
    out = Path(args.out)
    if out.suffix.lower() not in (".xyz", ".extxyz", ".cif", ".vasp", ".pdb", ".traj", ".json"):
        raise ParameterError(
            "--out", f"{out}: use an .xyz (extended xyz) file or another ase format"
        )
    _check_element(args.element)
    check_output(out, overwrite=args.overwrite)
    check_output(_particles_path(out), overwrite=args.overwrite)
    diam = args.diameter[0] if len(args.diameter) == 1 else list(args.diameter)
    return dict(
        extent=tuple(args.extent),
        substrate_thickness=args.substrate_thickness,
        n_particles=args.particles,
        element=args.element,
        shape=args.shape,
        particle_diameter=diam,
        defects=args.defect,
        orientation=orientation,
        placement=args.placement,
        embed_depth=args.embed_depth,
        min_gap=args.min_gap,
        substrate_density=args.substrate_density,
        rng=args.seed,
    )


def run_structure(args: argparse.Namespace) -> int:
    from ..simulate.structures import build_scene

    t0 = time.perf_counter()
    kwargs = validate_structure(args)
    scene = build_scene(**kwargs)
    out, pout = scene.write(args.out)
    cell = scene.atoms.cell.lengths()
    print(
        f"scene: {len(scene.atoms)} atoms ({scene.info['n_particle_atoms']} in "
        f"{args.particles} particle(s), {scene.info['n_substrate_atoms']} C), cell "
        f"{cell[0]:.1f} x {cell[1]:.1f} x {cell[2]:.1f} Å -> {out}"
    )
    print(f"particle-only structure -> {pout}")
    print(f"time: {time.perf_counter() - t0:.2f} s")
    return 0


def _read_structure(path: str):
    import ase.io

    from ..core.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such structure file")
    try:
        atoms = ase.io.read(p)
    except Exception as exc:  # ase raises many types
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read a structure ({msg})") from None
    if atoms.cell.volume <= 0 or atoms.cell.rank < 3:
        raise InputError(f"{path}: the structure has no 3D cell (give it an orthorhombic cell)")
    return atoms


def _particles_for(args, atoms):
    if args.particles:
        return _read_structure(args.particles)
    p = Path(args.structure)
    side = p.with_name(p.stem + "_particles" + p.suffix)
    if side.is_file():
        return _read_structure(str(side))
    from ..core.errors import InputError

    ids = atoms.arrays.get("particle_id")
    if ids is None:
        raise InputError(
            "labels need the particle-only structure: pass --particles or a structure with a "
            "particle_id array (as written by 'simulate structure')"
        )
    parts = atoms[np.asarray(ids) > 0]
    if len(parts) == 0:
        raise InputError(
            f"{args.structure}: the structure has no particle atoms (particle_id > 0) to label"
        )
    return parts


def _parse_aberrations(items) -> dict:
    from ..core.errors import ParameterError
    from ..simulate.ctf import ABERRATION_SYMBOLS

    names = {sym for sym, _, _ in ABERRATION_SYMBOLS}
    names |= {"phi" + sym[1:] for sym in names}
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep or k not in names:
            raise ParameterError(
                "--aberration", f"expects NAME=VALUE with NAME in C10..C56, phi12..phi56; got {item!r}"
            )  # fmt: skip
        try:
            out[k] = float(v)
        except ValueError:
            raise ParameterError("--aberration", f"{k}: not a number: {v!r}") from None
        if not np.isfinite(out[k]):
            raise ParameterError("--aberration", f"{k}: must be finite, got {v!r}")
    return out


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


def validate_image(args: argparse.Namespace) -> dict:
    """All ``simulate image`` parameters checked in one place, before anything is read or written.

    Returns the simulator's, the CTF's and the detector's keyword arguments.
    """
    from ..core import params as P
    from ..core.errors import ParameterError
    from ..core.outputs import check_output

    P.in_range("--energy-kv", args.energy_kv, 10.0, 3000.0)
    P.in_range("--sampling", args.sampling, 0.005, 2.0)
    P.in_range("--slice-thickness", args.slice_thickness, 0.05, 1000.0)
    P.positive("--frozen-phonons", args.frozen_phonons, integer=True, maximum=1000)
    for name in ("defocus", "cs", "focal_spread", "source_spread_mrad"):
        P.in_range(f"--{name.replace('_', '-')}", getattr(args, name), -1e12, 1e12)
    P.non_negative("--focal-spread", args.focal_spread)
    P.non_negative("--source-spread-mrad", args.source_spread_mrad, maximum=100.0)
    if args.aperture_mrad is not None:
        P.positive("--aperture-mrad", args.aperture_mrad, maximum=1000.0)
    if args.dose is not None:
        P.positive("--dose", args.dose, maximum=1e12)
    if args.mtf is not None:
        q0, c, power = args.mtf
        P.positive("--mtf Q0", q0)
        P.fraction("--mtf C", c)
        P.positive("--mtf POWER", power, maximum=100)
    P.non_negative("--median", args.median, integer=True, maximum=101)
    if args.pixel_size is not None:
        P.in_range("--pixel-size", args.pixel_size, 0.005, 100.0)
    aberrations = _parse_aberrations(args.aberration)
    inputs = [args.structure] + ([args.particles] if args.particles else [])
    seen = {}
    for name in ("out", "exit_wave", "labels"):
        val = getattr(args, name)
        if not val:
            continue
        flag = "--" + name.replace("_", "-")
        key = str(Path(val).expanduser().resolve())
        if key in seen:
            raise ParameterError(flag, f"{val}: same file as {seen[key]}")
        seen[key] = flag
        check_output(val, inputs, overwrite=args.overwrite, name=flag)
        if Path(val).suffix.lower() not in (".npy", ".tif", ".tiff"):
            raise ParameterError(flag, f"{val}: use a .npy or .tif file")
    mtf = dict(zip(("q0", "c", "power"), args.mtf)) if args.mtf else None
    return dict(
        simulator=dict(
            energy_kv=args.energy_kv,
            sampling=args.sampling,
            slice_thickness=args.slice_thickness,
            parametrization=args.parametrization,
            frozen_phonons=args.frozen_phonons,
            seed=args.seed,
            device=args.device,
        ),
        ctf=dict(
            defocus=args.defocus,
            cs=args.cs,
            aberrations=aberrations,
            aperture_mrad=args.aperture_mrad,
            focal_spread=args.focal_spread,
            focal_mode=args.focal_mode,
            source_spread_mrad=args.source_spread_mrad,
        ),
        detector=dict(
            dose=args.dose, mtf=mtf, median=args.median, pixel_size=args.pixel_size, rng=args.seed
        ),
    )


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
    from ..simulate.hrtem import HRTEMSimulator, make_labels
    from ..simulate.labels import resize_labels

    kw = validate_image(args)
    t0 = time.perf_counter()
    atoms = _read_structure(args.structure)
    particles = _particles_for(args, atoms) if args.labels else None
    t_read = time.perf_counter() - t0
    progress = cli_progress()
    sim = HRTEMSimulator(atoms, particles, **kw["simulator"])
    ew = sim.exit_waves(progress)
    img = sim.image(sim.ctf(**kw["ctf"]), **kw["detector"])
    dy, dx = img.grid.spacing
    _save(args.out, img.data, pixel_size=(dy, dx))
    timings = {"read": t_read, **ew.timings}
    if args.exit_wave:
        _save(args.exit_wave, ew.waves[0] if ew.waves.shape[0] == 1 else ew.waves)
    if args.labels:
        t1 = time.perf_counter()
        _, inst = make_labels(sim, args.label_method, progress=progress)
        inst = resize_labels(inst, img.data.shape)
        _save(args.labels, inst.astype(np.int32), pixel_size=(dy, dx))
        timings["labels"] = time.perf_counter() - t1
    ny, nx = img.data.shape
    data = img.data
    print(
        f"image {ny} x {nx} px at {dx:.4f} Å ({len(atoms)} atoms, {ew.waves.shape[0]} "
        f"configuration(s), backend {ew.backend}) -> {args.out}"
    )
    print(f"intensity min {data.min():.4f} max {data.max():.4f} mean {data.mean():.4f}")
    for k, v in timings.items():
        print(f"  {k:<11s} {v:8.3f} s")
    print(f"  {'total':<11s} {time.perf_counter() - t0:8.3f} s")
    return 0
