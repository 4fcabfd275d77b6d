"""``napari-interfaces simulate database``: a simulated HRTEM database in zarr."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._spec import add_command, spec_from_args


def register(groups: dict) -> None:
    from ..simulate.database import DatabaseFiles, DatabaseParams

    add_command(
        groups["simulate"],
        "database",
        run,
        DatabaseFiles,
        DatabaseParams,
        help="generate (or resume) a database of simulated images + labels in a zarr store",
        description="Draw N samples from a YAML recipe of distributions (structures, imaging "
        "conditions, dose, ...), simulate image + labels for each and write them with their "
        "parameters to a zarr store, one sample per chunk. Deterministic by seed; re-running "
        "the same command resumes an interrupted run. Runs on dask: a local cluster of "
        "--workers processes by default, or an existing cluster with --scheduler ADDRESS.",
        epilog="Shipped example specs: rangel_dacosta_2024 (the paper's recipe), hrtem_default "
        "(the default model's database), tiny_synthetic (fast toy images). "
        "See docs/hrtem_segmentation.md for the spec format and HPC use (dask-jobqueue).",
    )


def plan(args: argparse.Namespace):
    """``(files, params)`` of ``simulate database``, checked before the store is touched."""
    from ..core.outputs import check_output
    from ..simulate.database import DatabaseFiles, DatabaseParams

    params = spec_from_args(DatabaseParams, args)
    files = spec_from_args(DatabaseFiles, args)
    spec = Path(files.spec)
    # an existing store is resumed (that is not an overwrite), but never the spec itself
    check_output(files.out, [spec] if spec.is_file() else [], overwrite=True, name="--out")
    if files.out.exists() and not files.out.is_dir():
        from ..core.errors import OutputExistsError

        raise OutputExistsError(f"--out {files.out}: exists and is not a zarr store (a folder)")
    return files, params


def run(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..simulate.database import generate_database

    files, params = plan(args)
    result = generate_database(
        files.spec, files.out, params, progress=cli_progress(not files.quiet)
    )
    rate = f", {result.samples_per_minute:.1f} samples/min" if result.computed else ""
    print(
        f"{result.path}: {result.n} samples ({result.computed} computed, {result.skipped} "
        f"already done) on {result.scheduler}{rate}"
    )
    return 0
