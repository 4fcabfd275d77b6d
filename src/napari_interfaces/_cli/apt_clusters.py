"""``napari-interfaces apt clusters``: cluster analysis of solute atoms (maximum separation,
DBSCAN, HDBSCAN) with statistics and the randomized-label check."""

from __future__ import annotations

import argparse
import json


def register(groups: dict) -> None:
    from ..apt.clusters import CLUSTER_METHODS

    p = groups["apt"].add_parser(
        "clusters",
        help="find solute clusters / small precipitates (maximum separation, DBSCAN, HDBSCAN)",
        description="Writes OUT/clusters.csv (per cluster: ions, atoms, solute atoms, centre, "
        "radius of gyration, Guinier radius, volume, at.%% and counting error per element), "
        "OUT/summary.json (parameters, number density, matrix composition, size distribution, "
        "randomized-label check, the parameters chosen and why), OUT/labels.npz (the point "
        "cloud with a cluster label per ion: 0 matrix, -1 unranged) and OUT/nn_check.png (k-th nearest-"
        "neighbour distances of the solutes vs shuffled labels).",
    )
    p.add_argument("file", metavar="FILE", help="point cloud: .pos .epos .apt ...")
    p.add_argument("--ranges", help="range file (default: same stem beside FILE)")
    p.add_argument(
        "--solutes", nargs="+", required=True, metavar="EL", help="solute elements, e.g. Cu Ni"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--method", choices=CLUSTER_METHODS, default="maxsep")
    p.add_argument(
        "--dmax",
        type=float,
        help="max. separation / DBSCAN eps in nm (default: chosen from the data against "
        "shuffled labels; DBSCAN/HDBSCAN 0.5)",
    )
    p.add_argument(
        "--order", type=int, help="order k of the method (default: chosen from the data)"
    )
    p.add_argument(
        "--nmin", type=int, help="min. solute ions per cluster (default: chosen from the data)"
    )
    p.add_argument(
        "--envelope",
        type=float,
        help="envelope distance L in nm (default: 1.4 x the ion spacing when chosen from the "
        "data, else dmax)",
    )
    p.add_argument(
        "--erosion",
        type=float,
        help="erosion distance in nm (default: 2 x the ion spacing when chosen from the data, "
        "else 0)",
    )
    p.add_argument("--efficiency", type=float, help="detection efficiency (for volumes)")
    p.add_argument(
        "--atomic-volume", type=float, help="atomic volume in nm^3 (Fe: 0.01178; for volumes)"
    )
    p.add_argument(
        "--no-random-check", action="store_true", help="skip the randomized-label check"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the label shuffle")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def validate(args: argparse.Namespace) -> dict:
    """Every parameter, checked before anything is read or written."""
    from ..apt.clusters import validate as check
    from ..core.outputs import check_output

    p = check(
        args.method,
        args.dmax,
        args.order,
        args.nmin,
        args.envelope,
        args.erosion,
        args.efficiency,
        args.atomic_volume,
    )
    inputs = [args.file] + ([args.ranges] if args.ranges else [])
    check_output(args.out, inputs, overwrite=args.overwrite)
    return p


def run(args: argparse.Namespace) -> int:
    from ..apt.clusters import cluster_dataset, write_cluster_results
    from ..apt.dataset import open_dataset
    from ..core.outputs import atomic_dir
    from ..core.progress import cli_progress

    p = validate(args)
    progress = cli_progress(not args.json)
    ds = open_dataset(args.file, args.ranges, progress=progress, require_ranges=True)
    res = cluster_dataset(
        ds,
        list(args.solutes),
        progress=progress,
        method=p["method"],
        dmax=p["dmax"],
        order=p["order"],
        n_min=p["n_min"],
        envelope_nm=p["envelope_nm"],
        erosion_nm=p["erosion_nm"],
        efficiency=p["efficiency"],
        atomic_volume_nm3=p["atomic_volume_nm3"],
        random_check=not args.no_random_check,
        seed=args.seed,
    )
    with atomic_dir(args.out) as tmp:
        write_cluster_results(res, ds.cloud, tmp)
    s = res.summary
    if args.json:
        print(json.dumps(s, indent=2, default=str))
        return 0
    print(
        f"{args.file}: {s['n_clusters']} cluster{'' if s['n_clusters'] == 1 else 's'}, "
        f"number density {s['number_density_m3']:.3g} m^-3 -> {args.out}"
    )
    par = s["parameters"]
    print(
        f"  parameters: order {par['order']}, dmax {par['dmax']:g} nm, nmin {par['n_min']}, "
        f"envelope {par['envelope_nm']:g} nm, erosion {par['erosion_nm']:g} nm"
    )
    for key, why in s.get("auto_parameters", {}).get("why", {}).items():
        print(f"    {key}: {why}")
    if "random_check" in s:
        print(f"  {s['random_check']['verdict']}")
        sug = s.get("suggested")
        if sug:
            print(f"  suggested: --dmax {sug['dmax_nm']} --nmin {sug['n_min']}")
    return 0
