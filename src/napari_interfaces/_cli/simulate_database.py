"""``napari-interfaces simulate database``: a simulated HRTEM database in zarr."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(groups: dict) -> None:
    p = groups["simulate"].add_parser(
        "database",
        help="generate (or resume) a database of simulated images + labels in a zarr store",
        description="Draw N samples from a YAML spec of distributions (structures, imaging "
        "conditions, dose, ...), simulate image + labels for each and write them with their "
        "parameters to a zarr store, one sample per chunk. Deterministic by seed; re-running "
        "the same command resumes an interrupted run. Runs on dask: a local cluster of "
        "--workers processes by default, or an existing cluster with --scheduler ADDRESS.",
        epilog="Shipped example specs: rangel_dacosta_2024 (the paper's recipe), hrtem_default "
        "(the default model's database), tiny_synthetic (fast toy images). "
        "See docs/hrtem_segmentation.md for the spec format and HPC use (dask-jobqueue).",
    )
    p.add_argument("spec", help="spec YAML file, or the name of a shipped example")
    p.add_argument("--n", type=int, default=None, help="number of samples (default: the spec's n)")
    p.add_argument("--out", type=Path, required=True, help="output zarr store (a folder)")
    p.add_argument("--seed", type=int, default=None, help="overrides the spec's seed")
    p.add_argument(
        "--scheduler",
        default=None,
        help="dask scheduler address (tcp://host:8786) of an existing cluster; 'inline' "
        "computes in this process; default: a new local cluster. A refused address fails "
        "within seconds. Security: a dask scheduler can run code in this process (dask "
        "unpickles results): connect only to a scheduler you started. Workers only compute; "
        "this process writes the store",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes (default: all cores; workers x threads never exceeds the cores)",
    )
    p.add_argument("--threads-per-worker", type=int, default=1, help="threads per local worker")
    p.add_argument(
        "--device",
        default=None,
        help="multislice backend on the workers: cpu (default; torch MKL FFTs), numpy, "
        "cuda[:N], opencl:N, auto (default: the spec's device parameter, else cpu)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def validate(args: argparse.Namespace) -> None:
    """All ``simulate database`` parameters checked in one place, before the store is touched."""
    from ..core import params as P
    from ..core.outputs import check_output

    if args.n is not None:
        P.positive("--n", args.n, integer=True, maximum=10**9)
    if args.seed is not None:
        P.non_negative("--seed", args.seed, integer=True, maximum=2**63 - 1)
    if args.workers is not None:
        P.positive("--workers", args.workers, integer=True, maximum=4096)
    P.positive("--threads-per-worker", args.threads_per_worker, integer=True, maximum=4096)
    spec = Path(args.spec)
    # an existing store is resumed (that is not an overwrite), but never the spec itself
    check_output(args.out, [spec] if spec.is_file() else [], overwrite=True, name="--out")
    if args.out.exists() and not args.out.is_dir():
        from ..core.errors import OutputExistsError

        raise OutputExistsError(f"--out {args.out}: exists and is not a zarr store (a folder)")


def run(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..simulate.database import generate_database

    validate(args)
    result = generate_database(
        args.spec,
        args.out,
        n=args.n,
        seed=args.seed,
        scheduler=args.scheduler,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        progress=cli_progress(not args.quiet),
        device=args.device,
    )
    rate = f", {result.samples_per_minute:.1f} samples/min" if result.computed else ""
    print(
        f"{result.path}: {result.n} samples ({result.computed} computed, {result.skipped} "
        f"already done) on {result.scheduler}{rate}"
    )
    return 0
