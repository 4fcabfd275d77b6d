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
    p.set_defaults(func=run_voxelize)


def _ranges_for(file: str, ranges: str | None, required: bool):
    from ..io.ranges import find_range_file, read_ranges

    if ranges:
        return read_ranges(ranges)
    if required:
        found = find_range_file(file)
        if found is None:
            raise FileNotFoundError(
                f"no range file given and none with the stem of {file} found (.rrng/.rng/.env)"
            )
        return read_ranges(found)
    return None


def info_dict(file: str, ranges: str | None = None, progress=None) -> dict:
    """What ``apt info --json`` prints."""
    from ..apt.ranging import composition_of_cloud
    from ..io.apt_pointcloud import read_pointcloud

    cloud = read_pointcloud(file)
    b = cloud.bounds()
    out = {
        "ions": cloud.n_ions,
        "bounds_nm": {ax: [b[ax][0], b[ax][1]] for ax in "xyz"},
        "mass_range_da": list(cloud.mass_range()),
        "composition_at_pct": None,
        "ranged_fraction": None,
    }
    rt = _ranges_for(file, ranges, required=False)
    if rt is not None:
        comp = composition_of_cloud(cloud, rt, progress=progress)
        out["composition_at_pct"] = dict(comp.atomic_percent)
        out["ranged_fraction"] = comp.ranged_fraction
    return out


def run_info(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress

    info = info_dict(args.file, args.ranges, progress=cli_progress(enabled=not args.json))
    if args.json:
        print(json.dumps(info))
        return 0
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
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from ..apt.synthetic import synthesize
    from ..core.progress import cli_progress

    s = synthesize(
        args.geometry,
        size_nm=tuple(args.size),
        seed=args.seed,
        width_nm=args.width,
        efficiency=args.efficiency,
        noise_lateral_nm=args.noise_lateral,
        noise_depth_nm=args.noise_depth,
        background=args.background,
        radius_nm=args.radius,
        period_nm=args.period,
        progress=cli_progress(),
    )
    paths = s.write(args.out, voxel_size=args.voxel)
    print(f"{s.cloud.n_ions:,} ions, geometry {args.geometry}, seed {args.seed}")
    for kind, p in paths.items():
        print(f"  {kind}: {p}")
    return 0


def run_voxelize(args: argparse.Namespace) -> int:
    from ..apt.voxelize import voxelize
    from ..core.progress import cli_progress
    from ..io.apt_pointcloud import read_pointcloud
    from ..io.apt_volume import write_volume_tiff

    cloud = read_pointcloud(args.file)
    rt = _ranges_for(args.file, args.ranges, required=True)
    elements = args.elements or rt.elements
    unknown = [e for e in elements if e not in rt.elements]
    if unknown:
        raise ValueError(f"elements {unknown} are not in the ranges (have {rt.elements})")
    deloc = None
    if args.delocalization is not None:
        dx, dy, dz = args.delocalization
        deloc = (dz, dy, dx)
    vox = voxelize(cloud, rt, voxel_size=args.voxel, delocalization=deloc, progress=cli_progress())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.file).stem
    meta = {"source": str(args.file), "ranges": str(rt.source), "delocalization_nm_zyx": deloc}
    written = []
    for el in elements:
        p = write_volume_tiff(
            out / f"{stem}_{el}_at_pct.tif",
            vox.composition(el),
            vox.grid,
            {**meta, "quantity": f"{el} at.%"},
        )
        written.append(p)
    if args.counts:
        for sp in vox.species:
            p = write_volume_tiff(
                out / f"{stem}_{sp}_counts.tif",
                vox.species_counts(sp),
                vox.grid,
                {**meta, "quantity": f"{sp} ions"},
            )
            written.append(p)
    print(f"grid {vox.shape} (z, y, x), voxel {args.voxel} nm, origin {vox.grid.origin} nm")
    for p in written:
        print(f"  {p}")
    return 0
