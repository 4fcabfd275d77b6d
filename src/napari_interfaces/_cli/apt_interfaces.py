"""``napari-interfaces apt segment``: phases, proxigrams and summaries for many files."""

from __future__ import annotations

import argparse
import json


def register(groups: dict) -> None:
    p = groups["apt"].add_parser(
        "segment",
        help="find interfaces and phases in APT files (HED, iso or GMM), in parallel with dask",
        description="Per input FILE writes OUT/<stem>/phases.tif (3D labels), proxigram.csv "
        "(distance_nm, each element's at.%% and its error) and summary.json (grid, phases, "
        "interfaces). Runs on a local dask cluster or on an existing scheduler.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="point clouds: .pos .epos .apt ...")
    p.add_argument("--ranges", help="range file for all inputs (default: same stem beside each)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", choices=("hed", "iso", "gmm"), default="hed")
    p.add_argument(
        "--axis",
        default="zyx",
        help="slicing axes for HED: z, y, x or a combination (default zyx: all three)",
    )
    p.add_argument("--voxel", type=float, default=1.0, help="voxel size in nm (default 1.0)")
    p.add_argument(
        "--weights",
        default="auto",
        help="HED weights: auto, finetuned, bsds500 or a .pt path (default auto)",
    )
    p.add_argument("--scheduler", help="address of an existing dask scheduler (tcp://host:port)")
    p.add_argument("--workers", type=int, default=1, help="local dask worker processes")
    p.add_argument("--threads", type=int, default=1, help="threads per local worker")
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..apt.batch import run_batch
    from ..core.progress import cli_progress

    if args.voxel <= 0:
        raise ValueError(f"--voxel must be positive, got {args.voxel}")
    if not args.axis or any(a not in "zyx" for a in args.axis.lower()):
        raise ValueError(f"--axis must be made of z, y, x; got {args.axis!r}")
    summaries = run_batch(
        args.files,
        args.out,
        ranges=args.ranges,
        method=args.method,
        axis=args.axis.lower(),
        voxel=args.voxel,
        weights=args.weights,
        scheduler=args.scheduler,
        workers=args.workers,
        threads=args.threads,
        progress=cli_progress(not args.json),
    )
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    for s in summaries:
        comp = "; ".join(
            f"phase {p['label']}: "
            + ", ".join(f"{e} {v:.1f}" for e, v in p["composition"].items())
            for p in s["phases"]
        )
        print(
            f"{s['input']}: {s['message']} ({s['seconds']['total']} s) -> {s['out_dir']}  [{comp}]"
        )
    return 0
