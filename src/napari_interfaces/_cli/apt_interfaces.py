"""``napari-interfaces apt segment``: phases, proxigrams and summaries for many files."""

from __future__ import annotations

import argparse
import json

NAMED_WEIGHTS = ("auto", "finetuned", "bsds500")

EPILOG = (
    "Outputs: one folder per input, named after its stem (parent folder + stem when two "
    "inputs share a stem); an existing result folder is refused unless --overwrite, and is "
    "replaced in one step (no stale files). dask: --scheduler tcp://host:8786 runs the files "
    "on an existing cluster; its workers read the inputs and write the outputs on THEIR OWN "
    "file systems (use paths on a shared file system). A dask scheduler can run code on "
    "this machine (results come back as pickles): connect only to a scheduler you started. "
    "An unreachable address fails within a few seconds."
)


def register(groups: dict) -> None:
    p = groups["apt"].add_parser(
        "segment",
        help="find interfaces and phases in APT files (HED, iso or GMM), in parallel with dask",
        description="Per input FILE writes OUT/<name>/phases.tif (3D labels), proxigram.csv "
        "(distance_nm, each element's at.%% and its error) and summary.json (grid, phases, "
        "interfaces). Runs on a local dask cluster or on an existing scheduler.",
        epilog=EPILOG,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="point clouds: .pos .epos .apt ...")
    p.add_argument("--ranges", help="range file for all inputs (default: same stem beside each)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing result folders")
    p.add_argument(
        "--method",
        choices=("auto", "hed", "iso", "gmm"),
        default="auto",
        help="auto (default): iso-concentration detection + mass-conserving precipitates; "
        "hed: deep-learning edges (HED fine-tuned on synthetic APT); iso; gmm",
    )
    p.add_argument(
        "--axis",
        default="zyx",
        help="slicing axes for HED: z, y, x or a combination (default zyx: all three)",
    )
    p.add_argument("--voxel", type=float, default=1.0, help="voxel size in nm (default 1.0)")
    p.add_argument(
        "--bin", type=float, default=0.25, help="proxigram bin width in nm (default 0.25)"
    )
    p.add_argument(
        "--weights",
        default="auto",
        help="HED weights: auto, finetuned, bsds500 or a .pt path (default auto)",
    )
    p.add_argument(
        "--scheduler",
        help="address of an existing dask scheduler (tcp://host:port; see the note below), "
        "or 'inline' to compute in this process",
    )
    p.add_argument("--workers", type=int, default=1, help="local dask worker processes")
    p.add_argument("--threads", type=int, default=1, help="threads per local worker")
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    p.set_defaults(func=run)


def _check_weights(weights: str) -> None:
    """A weights path must exist and load as HED weights (one-line error otherwise)."""
    from pathlib import Path

    from ..core.errors import InputError

    if weights in NAMED_WEIGHTS:
        return
    path = Path(weights)
    if not path.is_file():
        raise InputError(
            f"--weights {weights}: no such file (or use one of {', '.join(NAMED_WEIGHTS)})"
        )
    try:
        from ..segment.hed_weights import load_hed

        load_hed(str(path), device="cpu", cached=True)
    except (ImportError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # any failure to load means "not HED weights"
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"--weights {weights}: not a HED weights file ({reason})") from None


def validate(args: argparse.Namespace) -> dict:
    """Every parameter of ``apt segment``, checked before anything is read or written."""
    from ..apt.batch import check_outputs
    from ..apt.workflows import check_segment_params
    from ..core.errors import ParameterError
    from ..core.params import positive
    from ..core.runner import check_scheduler_address

    p = check_segment_params(args.method, args.axis, args.voxel, args.bin)
    positive("--workers", args.workers, integer=True, maximum=1024)
    positive("--threads", args.threads, integer=True, maximum=1024)
    check_outputs(args.files, args.out, args.ranges, args.overwrite)
    if args.scheduler and args.scheduler not in ("inline", "local"):
        check_scheduler_address(args.scheduler)
    if p["method"] == "hed":
        _check_weights(args.weights)
    elif args.weights not in (None, "auto"):
        raise ParameterError("--weights", f"is used only with --method hed, not {p['method']}")
    return p


def run(args: argparse.Namespace) -> int:
    """``apt segment``: validate everything, run the batch, print the summaries."""
    import warnings

    from ..apt.dataset import RangingWarning

    p = validate(args)
    with warnings.catch_warnings():  # printed once below (or kept in the JSON summaries)
        warnings.simplefilter("ignore", RangingWarning)
        summaries = _run(args, p)
    return _report(args, summaries)


def _run(args: argparse.Namespace, p: dict) -> list:
    from ..apt.batch import run_batch
    from ..core.progress import cli_progress

    return run_batch(
        args.files,
        args.out,
        ranges=args.ranges,
        method=p["method"],
        axis=p["axes"],
        voxel=p["voxel"],
        weights=args.weights,
        scheduler=args.scheduler,
        workers=args.workers,
        threads=args.threads,
        progress=cli_progress(not args.json),
        overwrite=args.overwrite,
        bin_nm=p["bin_nm"],
    )


def _report(args: argparse.Namespace, summaries: list) -> int:
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    import sys

    for s in summaries:
        for w in s.get("warnings", []):
            print(f"napari-interfaces: warning: {w}", file=sys.stderr)
        comp = "; ".join(
            f"phase {p['label']}: "
            + ", ".join(f"{e} {v:.1f}" for e, v in p["composition"].items())
            for p in s["phases"]
        )
        print(
            f"{s['input']}: {s['message']} ({s['seconds']['total']} s) -> {s['out_dir']}  [{comp}]"
        )
    return 0
