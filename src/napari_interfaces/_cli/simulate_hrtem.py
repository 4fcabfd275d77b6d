"""``napari-interfaces simulate structure|image``: HRTEM scenes and images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


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
    q.set_defaults(func=run_image)


def run_structure(args: argparse.Namespace) -> int:
    from ..simulate.structures import build_scene

    t0 = time.perf_counter()
    orientation = args.orientation
    if orientation not in ("random", "none"):
        try:
            orientation = tuple(int(x) for x in orientation.replace(",", " ").split())
        except ValueError as exc:
            raise ValueError(
                f"--orientation must be 'random' or 'u v w', got {orientation!r}"
            ) from exc
    diam = args.diameter[0] if len(args.diameter) == 1 else list(args.diameter)
    scene = build_scene(
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

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such structure file")
    try:
        atoms = ase.io.read(p)
    except Exception as exc:  # noqa: BLE001 - ase raises many types
        raise ValueError(f"{path}: cannot read a structure ({exc})") from exc
    if atoms.cell.volume <= 0 or atoms.cell.rank < 3:
        raise ValueError(f"{path}: the structure has no 3D cell (give it an orthorhombic cell)")
    return atoms


def _particles_for(args, atoms):
    import numpy as np

    if args.particles:
        return _read_structure(args.particles)
    p = Path(args.structure)
    side = p.with_name(p.stem + "_particles" + p.suffix)
    if side.is_file():
        return _read_structure(str(side))
    ids = atoms.arrays.get("particle_id")
    if ids is None:
        raise ValueError(
            "labels need the particle-only structure: pass --particles or a structure with a "
            "particle_id array (as written by 'simulate structure')"
        )
    parts = atoms[np.asarray(ids) > 0]
    if len(parts) == 0:
        raise ValueError("the structure has no particle atoms (particle_id > 0) to label")
    return parts


def _parse_aberrations(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--aberration expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = float(v)
    return out


def _save(path: str, array, pixel_size: float | None = None) -> None:
    """Write .npy, or a TIFF whose ImageJ metadata carry the pixel size in Å.

    The pixel size lets ``napari-interfaces segment`` and the micrograph
    reader rescale to a model's training pixel size without a user value.
    """
    import numpy as np

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".npy":
        np.save(p, array)
    elif p.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        data = np.asarray(array)
        if np.iscomplexobj(data) or data.ndim > 3:
            tifffile.imwrite(p, data)  # exit waves: plain TIFF
        else:
            kw = {}
            if pixel_size:
                kw = {
                    "resolution": (1.0 / pixel_size, 1.0 / pixel_size),
                    "metadata": {"unit": "angstrom"},
                }
            if data.dtype.kind == "f":
                data = data.astype(np.float32)
            elif data.dtype.kind in "iub" and data.dtype != np.uint8:
                if data.min(initial=0) >= 0 and data.max(initial=0) < 65536:
                    data = data.astype(np.uint16)  # labels: ImageJ has no 32-bit integers
                else:
                    tifffile.imwrite(p, data)
                    return
            tifffile.imwrite(p, data, imagej=True, **kw)
    else:
        raise ValueError(f"{path}: use a .npy or .tif file")


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
    import numpy as np

    from ..core.progress import cli_progress
    from ..simulate.hrtem import HRTEMSimulator, make_labels

    for name in ("out", "labels"):
        val = getattr(args, name)
        if val and Path(val).suffix.lower() not in (".npy", ".tif", ".tiff"):
            raise ValueError(f"--{name} {val}: use a .npy or .tif file")
    t0 = time.perf_counter()
    atoms = _read_structure(args.structure)
    particles = _particles_for(args, atoms) if args.labels else None
    t_read = time.perf_counter() - t0
    progress = cli_progress()
    sim = HRTEMSimulator(
        atoms,
        particles,
        energy_kv=args.energy_kv,
        sampling=args.sampling,
        slice_thickness=args.slice_thickness,
        parametrization=args.parametrization,
        frozen_phonons=args.frozen_phonons,
        seed=args.seed,
        device=args.device,
    )
    ew = sim.exit_waves(progress)
    mtf = dict(zip(("q0", "c", "power"), args.mtf)) if args.mtf else None
    img = sim.image(
        defocus=args.defocus,
        cs=args.cs,
        aberrations=_parse_aberrations(args.aberration),
        aperture_mrad=args.aperture_mrad,
        focal_spread=args.focal_spread,
        focal_mode=args.focal_mode,
        source_spread_mrad=args.source_spread_mrad,
        dose=args.dose,
        mtf=mtf,
        median=args.median,
        pixel_size=args.pixel_size,
        rng=args.seed,
    )
    dx_out = float(sim.last_sampling[0])
    _save(args.out, img, pixel_size=dx_out)
    timings = {"read": t_read, **ew.timings}
    if args.exit_wave:
        _save(args.exit_wave, ew.waves[0] if ew.waves.shape[0] == 1 else ew.waves)
    if args.labels:
        from ..simulate.hrtem import _resize_nearest

        t1 = time.perf_counter()
        _, inst = make_labels(sim, args.label_method, progress=progress)
        inst = _resize_nearest(inst, img.shape)
        _save(args.labels, inst.astype(np.int32), pixel_size=dx_out)
        timings["labels"] = time.perf_counter() - t1
    ny, nx = img.shape
    dx, dy = sim.last_sampling
    print(
        f"image {ny} x {nx} px at {dx:.4f} Å ({len(atoms)} atoms, {ew.waves.shape[0]} "
        f"configuration(s), backend {ew.backend}) -> {args.out}"
    )
    print(f"intensity min {img.min():.4f} max {img.max():.4f} mean {img.mean():.4f}")
    for k, v in timings.items():
        print(f"  {k:<11s} {v:8.3f} s")
    print(f"  {'total':<11s} {time.perf_counter() - t0:8.3f} s")
    return 0
