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
    from ..apt.batch import BatchOptions, SegmentFiles
    from ..apt.workflows import SegmentParams
    from ._spec import add_command

    add_command(
        groups["apt"],
        "segment",
        run,
        SegmentFiles,
        SegmentParams,
        BatchOptions,
        help="find interfaces and phases in APT files (HED, iso or GMM), in parallel with dask",
        description="Per input FILE writes OUT/<name>/phases.tif (3D labels), proxigram.csv "
        "(distance_nm, each element's at.% and its error) and summary.json (grid, phases, "
        "interfaces). Runs on a local dask cluster or on an existing scheduler.",
        epilog=EPILOG,
    )


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


def plan(args: argparse.Namespace):
    """Every parameter of ``apt segment``, checked before anything is read or written.

    Returns ``(files, params, options)`` (:class:`~napari_interfaces.apt.batch.SegmentFiles`,
    :class:`~napari_interfaces.apt.workflows.SegmentParams`,
    :class:`~napari_interfaces.apt.batch.BatchOptions`).
    """
    from ..apt.batch import BatchOptions, SegmentFiles, check_outputs
    from ..apt.workflows import SegmentParams
    from ..core.runner import check_scheduler_address
    from ._spec import spec_from_args

    params = spec_from_args(SegmentParams, args)
    options = spec_from_args(BatchOptions, args)
    files = spec_from_args(SegmentFiles, args)
    files.required("out", what="an output folder")
    check_outputs([str(f) for f in files.files], files.out, _text(files.ranges), files.overwrite)
    if options.scheduler and options.scheduler != "inline":
        check_scheduler_address(options.scheduler)
    if params.method == "hed":
        _check_weights(params.weights)
    return files, params, options


def _text(path) -> str | None:
    return None if path is None else str(path)


def run(args: argparse.Namespace) -> int:
    """``apt segment``: check everything, run the batch, print the summaries."""
    import warnings

    from ..apt.batch import run_batch
    from ..apt.dataset import RangingWarning
    from ..core.progress import cli_progress

    files, params, options = plan(args)
    with warnings.catch_warnings():  # printed once below (or kept in the JSON summaries)
        warnings.simplefilter("ignore", RangingWarning)
        summaries = run_batch(
            [str(f) for f in files.files],
            str(files.out),
            ranges=_text(files.ranges),
            params=params,
            options=options,
            progress=cli_progress(not files.json),
            overwrite=files.overwrite,
        )
    return _report(files.json, summaries)


def _report(as_json: bool, summaries: list) -> int:
    if as_json:
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
