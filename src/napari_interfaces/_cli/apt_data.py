"""``napari-interfaces apt info | synth | voxelize``: APT data on the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(groups: dict) -> None:
    apt = groups["apt"]
    p = apt.add_parser(
        "info",
        help="ion count, bounds, mass range and (with ranges) atomic composition",
        description="Print the ion count, bounds (nm) per axis, mass range (Da) and, with a "
        "range file, the decomposed atomic composition (at.%%) and the ranged fraction.",
    )
    p.add_argument("file", help="point cloud: .pos .epos .apt .ato .csv .txt")
    p.add_argument("--ranges", help="range file: .rrng .rng .env")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_info)

    p = apt.add_parser(
        "synth",
        help="write a synthetic APT specimen with ground truth",
        description="Generate an fcc Ni-Al-Cr specimen with L1_2 precipitates and a known "
        "diffuse interface profile; writes .pos, .rrng, the ground-truth phase volume (TIFF), "
        "the true profiles (CSV) and the parameters (JSON).",
    )
    p.add_argument(
        "--geometry", choices=("layered", "isolated", "interconnected"), default="layered"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--size",
        type=float,
        nargs=3,
        default=(20.0, 20.0, 40.0),
        metavar=("X", "Y", "Z"),
        help="box size in nm (default 20 20 40)",
    )
    p.add_argument("--width", type=float, default=1.0, help="10-90%% interface width, nm")
    p.add_argument("--efficiency", type=float, default=0.5, help="detection efficiency")
    p.add_argument("--noise-lateral", type=float, default=0.3, help="x/y noise sigma, nm")
    p.add_argument("--noise-depth", type=float, default=0.1, help="z noise sigma, nm")
    p.add_argument("--background", type=float, default=0.03, help="background ion fraction")
    p.add_argument("--radius", type=float, default=3.0, help="precipitate radius (isolated), nm")
    p.add_argument(
        "--period",
        type=float,
        default=None,
        help="plate period (layered) or network period (interconnected), nm",
    )
    p.add_argument("--voxel", type=float, default=1.0, help="voxel size of the phase volume, nm")
    p.set_defaults(func=run_synth)

    p = apt.add_parser(
        "voxelize",
        help="composition volumes (at.%%) per element as TIFF",
        description="Range and voxelize a point cloud; writes one at.%% TIFF per element "
        "(<stem>_<El>_at_pct.tif) with voxel size metadata, and with --counts the ion "
        "counts per species.",
    )
    p.add_argument("file")
    p.add_argument("--ranges", help="range file (default: same stem beside FILE)")
    p.add_argument("--voxel", type=float, default=1.0, help="voxel size, nm (default 1)")
    p.add_argument(
        "--delocalization",
        type=float,
        nargs=3,
        default=None,
        metavar=("DX", "DY", "DZ"),
        help="Gaussian delocalization in nm, e.g. 3 3 1.5 (sigma = d / 3)",
    )
    p.add_argument("--elements", nargs="*", help="only these elements (default all)")
    p.add_argument("--counts", action="store_true", help="also write counts per species")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run_voxelize)


def _write_files(
    out: Path,
    names: list[str],
    write,
    *,
    inputs: list[str],
    overwrite: bool,
) -> list[Path]:
    """Check every output ``out/<name>``, run ``write(tmp_folder)``, move the files in.

    Each output is checked before anything is written (an input is never
    replaced; an existing file only with ``--overwrite``); ``write`` writes
    into a temporary folder inside ``out`` and each file then replaces its
    destination with :func:`os.replace` (no half-written file under a final
    name; the temporary folder is removed on failure).
    """
    import os

    from ..core.outputs import check_output, cleanup_stale, output_path, temp_dir

    if out.exists() and not out.is_dir():
        from ..core.errors import OutputExistsError

        raise OutputExistsError(f"--out {out}: is a file, expected a folder")
    for nm in names:
        check_output(output_path(out, nm), inputs, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    cleanup_stale(out)
    with temp_dir(out / (out.name or "out")) as tmp:
        write(tmp)
        produced = sorted(p.name for p in tmp.iterdir())
        unexpected = sorted(set(produced) - set(names))
        if unexpected:  # a writer named a file differently: check it too
            for nm in unexpected:
                check_output(output_path(out, nm), inputs, overwrite=overwrite)
        written = []
        for nm in produced:
            os.replace(tmp / nm, output_path(out, nm))
            written.append(out / nm)
        return written


def _print_warnings(warnings: list[str]) -> None:
    import sys

    for w in warnings:
        print(f"napari-interfaces: warning: {w}", file=sys.stderr)


def info_dict(file: str, ranges: str | None = None, progress=None) -> dict:
    """What ``apt info --json`` prints (:func:`napari_interfaces.apt.workflows.dataset_info`)."""
    from ..apt.workflows import dataset_info

    return dataset_info(file, ranges, progress=progress)


def run_info(args: argparse.Namespace) -> int:
    import math
    import warnings

    from ..core.progress import cli_progress

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow: reported below, one line
        info = info_dict(args.file, args.ranges, progress=cli_progress(enabled=not args.json))
    comp = info.get("composition_at_pct") or {}
    bad = sorted(el for el, v in comp.items() if not math.isfinite(float(v)))
    if bad:
        from ..core.errors import InputError

        raise InputError(
            f"{info.get('range_file') or args.ranges}: the composition of {', '.join(bad)} is not "
            "a finite number (an element count in the range file is too large)"
        )
    if args.json:
        print(json.dumps(info, allow_nan=False))
        return 0
    _print_warnings(info.get("warnings", []))
    print(f"{args.file}: {info['ions']:,} ions")
    for ax, (lo, hi) in info["bounds_nm"].items():
        print(f"  {ax}: {lo:.3f} .. {hi:.3f} nm")
    lo, hi = info["mass_range_da"]
    print(f"  mass-to-charge: {lo:.3f} .. {hi:.3f} Da")
    if info["composition_at_pct"] is not None:
        print(f"composition (at.%, molecular ions decomposed; ranges {args.ranges}):")
        for el, v in sorted(info["composition_at_pct"].items(), key=lambda t: -t[1]):
            print(f"  {el:>3}: {v:8.4f}")
        print(f"ranged fraction: {info['ranged_fraction']:.4f}")
        for sp, n in (info.get("known_unranged") or {}).items():
            print(f"  unranged-but-known {sp}: {n:,} ions (not in the composition)")
    return 0


#: Atoms per nm³ of the synthetic fcc Ni-Al-Cr specimen (a generous bound).
_ATOMS_PER_NM3 = 100.0
#: Bytes per generated ion while synthesizing (positions, masses, labels, work arrays).
_BYTES_PER_ION = 96


def validate_synth(args: argparse.Namespace) -> dict:
    """Every ``apt synth`` parameter, checked before anything is computed or written."""
    import numpy as np

    from ..core.limits import check_bytes
    from ..core.params import fraction, in_range, non_negative, positive

    size = [positive(f"--size {ax}", v, maximum=2000.0) for ax, v in zip("XYZ", args.size)]
    p = {
        "size": tuple(size),
        "width": non_negative("--width", args.width, maximum=100.0),
        "efficiency": in_range("--efficiency", args.efficiency, 0.0, 1.0, lo_open=True),
        "noise_lateral": non_negative("--noise-lateral", args.noise_lateral, maximum=100.0),
        "noise_depth": non_negative("--noise-depth", args.noise_depth, maximum=100.0),
        "background": fraction("--background", args.background),
        "radius": positive("--radius", args.radius, maximum=1000.0),
        "period": None
        if args.period is None
        else in_range("--period", args.period, 1.0, 4 * max(size)),
        "voxel": positive("--voxel", args.voxel, maximum=100.0),
        "seed": non_negative("--seed", args.seed, integer=True),
    }
    n_ions = _ATOMS_PER_NM3 * float(np.prod(size)) * p["efficiency"] / (1 - p["background"])
    check_bytes(n_ions * _BYTES_PER_ION, f"synthetic specimen of {size} nm (~{n_ions:.3g} ions)")
    nvox = float(np.prod([np.ceil(s / p["voxel"]) + 1 for s in size]))
    check_bytes(nvox * 8, f"phase volume of {size} nm at {p['voxel']:g} nm voxels")
    return p


def run_synth(args: argparse.Namespace) -> int:
    from ..apt.synthetic import synthesize
    from ..core.progress import cli_progress

    p = validate_synth(args)
    stem = f"synthetic_{args.geometry}_seed{p['seed']}"
    names = [f"{stem}{x}" for x in (".pos", ".rrng", "_phase.tif", "_profile.csv", "_truth.json")]
    out = Path(args.out)
    from ..core.outputs import check_output

    for nm in names:  # refuse before the (long) synthesis
        check_output(out / nm, overwrite=args.overwrite)
    s = synthesize(
        args.geometry,
        size_nm=p["size"],
        seed=p["seed"],
        width_nm=p["width"],
        efficiency=p["efficiency"],
        noise_lateral_nm=p["noise_lateral"],
        noise_depth_nm=p["noise_depth"],
        background=p["background"],
        radius_nm=p["radius"],
        period_nm=p["period"],
        progress=cli_progress(),
    )
    written = _write_files(
        out,
        names,
        lambda tmp: s.write(tmp, stem=stem, voxel_size=p["voxel"]),
        inputs=[],
        overwrite=args.overwrite,
    )
    print(f"{s.cloud.n_ions:,} ions, geometry {args.geometry}, seed {p['seed']}")
    for path in written:
        print(f"  {path}")
    return 0


def validate_voxelize(args: argparse.Namespace) -> dict:
    """Every ``apt voxelize`` parameter, checked before the point cloud is read."""
    from ..apt.workflows import check_voxelize_params
    from ..core.errors import ParameterError
    from ..io.ranges import find_range_file, read_ranges

    p = check_voxelize_params(args.voxel, args.delocalization)
    rf = args.ranges or find_range_file(args.file)
    if rf is None:
        raise ParameterError(
            "--ranges",
            f"no range file given and none with the stem of {args.file} found (.rrng/.rng/.env)",
        )
    rt = read_ranges(rf)
    elements = list(args.elements or rt.elements)
    unknown = [e for e in elements if e not in rt.elements]
    if unknown:
        raise ParameterError("--elements", f"{unknown} are not in the ranges (have {rt.elements})")
    from ..core.outputs import check_output, output_path, safe_names

    # element and species names come from the range file: one safe file name each
    stem = Path(args.file).stem
    files = {el: f"{stem}_{nm}_at_pct.tif" for el, nm in zip(elements, safe_names(elements))}
    counts = {}
    if args.counts:
        sp = rt.species
        counts = {s: f"{stem}_{nm}_counts.tif" for s, nm in zip(sp, safe_names(sp))}
    names = [*files.values(), *counts.values()]
    inputs = [args.file, str(rf)]
    out = Path(args.out)
    for nm in names:  # the folder may hold the inputs; no output may be one
        check_output(output_path(out, nm), inputs, overwrite=args.overwrite)
    return {
        **p,
        "ranges": rt,
        "elements": elements,
        "names": names,
        "files": files,
        "count_files": counts,
        "inputs": inputs,
    }


def run_voxelize(args: argparse.Namespace) -> int:
    import warnings

    from ..apt.dataset import RangingWarning
    from ..apt.workflows import explore
    from ..core.progress import cli_progress
    from ..io.apt_volume import write_volume_tiff

    p = validate_voxelize(args)
    deloc = args.delocalization  # x, y, z
    with warnings.catch_warnings():  # printed once below, as one line
        warnings.simplefilter("ignore", RangingWarning)
        res = explore(
            args.file,
            p["ranges"],
            p["voxel"],
            None if deloc is None else tuple(deloc),
            progress=cli_progress(),
            elements=p["elements"],
            spectrum=False,
        )
    _print_warnings(res.dataset.warnings)
    vox = res.vox
    meta = {
        "source": str(args.file),
        "ranges": str(p["ranges"].source),
        "delocalization_nm_zyx": p["delocalization_zyx"],
    }

    def write(tmp: Path) -> None:
        for el in p["elements"]:
            write_volume_tiff(
                tmp / p["files"][el],
                vox.composition(el),
                vox.grid,
                {**meta, "quantity": f"{el} at.%"},
            )
        if args.counts:
            for sp in vox.species:
                write_volume_tiff(
                    tmp / p["count_files"][sp],
                    vox.species_counts(sp),
                    vox.grid,
                    {**meta, "quantity": f"{sp} ions"},
                )

    written = _write_files(
        Path(args.out), p["names"], write, inputs=p["inputs"], overwrite=args.overwrite
    )
    print(f"grid {vox.shape} (z, y, x), voxel {p['voxel']:g} nm, origin {vox.grid.origin} nm")
    for path in written:
        print(f"  {path}")
    return 0
