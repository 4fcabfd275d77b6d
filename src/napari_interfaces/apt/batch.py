"""Batch segmentation of many APT files with dask ("send your code and push a button").

:func:`segment_file` does one dataset with the engine workflow
:func:`~napari_interfaces.apt.workflows.segment_dataset` (read point cloud
and ranges -> atoms -> composition voxels -> phases -> proxigram) and
writes, atomically (a temporary folder that replaces the result folder in
one step, so no stale file of an earlier run survives), into
``out_dir/<name>/``:

* ``phases.tif``: 3D labels (ImageJ TIFF with voxel size; full grid in Info)
* ``proxigram.csv``: ``distance_nm``, then per element ``<El>_at%`` and
  ``<El>_err_at%`` (counting statistics), then ``n_atoms``
* ``summary.json``: grid origin, voxel size and shape (voxels and nm),
  phases with mean composition, interfaces found, provenance, timing

``<name>`` is the input's stem, or (when two inputs share a stem) the
parent folder's name and the stem (:func:`result_folder_names`).

:func:`run_batch` maps it over files with the project's one dask runner
(:func:`napari_interfaces.core.runner.run_tasks`): a ``LocalCluster`` of
``workers`` single-threaded processes by default, or an existing scheduler
address (a real HPC cluster, e.g. started with dask-jobqueue).

Security and file systems: a dask scheduler can run code on the client
(results come back as pickles), so connect only to a scheduler you
started; workers read the inputs and write the outputs **on their own file
systems** (the paths must exist there: a shared file system).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from .workflows import SegmentParams, result_folder_names

__all__ = [
    "BatchOptions",
    "SegmentFiles",
    "check_outputs",
    "result_folder_names",
    "run_batch",
    "segment_file",
    "write_outputs",
]


@dataclass(frozen=True)
class SegmentFiles(Spec):
    """Inputs and outputs of ``apt segment``."""

    files: Path | tuple[Path, ...] | None = param(
        None, "point clouds: .pos .epos .apt ...", positional=True, nargs="+", metavar="FILE"
    )
    ranges: Path | None = param(
        None, "range file for all inputs (default: same stem beside each)", gui=False
    )
    out: Path | None = param(None, "output folder (required)", gui=False)
    overwrite: bool = param(False, "replace existing result folders", gui=False)
    json: bool = param(False, "print the summaries as JSON", gui=False)


@dataclass(frozen=True)
class BatchOptions(Spec):
    """Where the batch runs (a local dask cluster, an existing scheduler or inline)."""

    scheduler: str | None = param(
        None,
        "address of an existing dask scheduler (tcp://host:port; see the note below), or "
        "'inline' to compute in this process",
        none="local",
        gui=False,
    )
    workers: int = param(1, "local dask worker processes", lo=1, hi=1024, gui=False)
    threads: int = param(1, "threads per local worker", lo=1, hi=1024, gui=False)


def write_outputs(out: Path, result, prox, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write phases.tif, proxigram.csv (if any) and summary.json into ``out``; return the summary.

    ``out`` is written in place (callers that replace a result folder wrap
    this in :func:`napari_interfaces.core.outputs.atomic_dir`).
    """
    from ..io.apt_volume import write_volume_tiff
    from .workflows import result_summary

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_volume_tiff(
        out / "phases.tif",
        result.labels.astype("uint16"),
        result.grid,
        {"phases": result.phases, "method": result.method},
    )
    if prox is not None:
        prox.to_csv(out / "proxigram.csv")
    summary = {**result_summary(result, prox), **(extra or {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def segment_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    ranges: str | None = None,
    params: SegmentParams | None = None,
    *,
    torch_threads: int = 1,
    progress: Progress | None = None,
    name: str | None = None,
    **values: Any,
) -> dict[str, Any]:
    """Segment one point-cloud file and write its outputs into ``out_dir/<name>``.

    ``params`` (a :class:`~napari_interfaces.apt.workflows.SegmentParams`,
    with ``values`` applied) as for
    :func:`~napari_interfaces.apt.workflows.segment_dataset`. ``name``
    defaults to the file's stem. The result folder is replaced atomically
    (see the module docstring); callers check beforehand that it may be
    replaced (:func:`check_outputs`).
    """
    from ..core.outputs import atomic_dir
    from .workflows import segment_dataset

    p = SegmentParams.of(params, **values)
    t0 = time.perf_counter()
    path = Path(path)
    if p.method == "hed":
        import torch

        torch.set_num_threads(max(1, int(torch_threads)))
    run = segment_dataset(path, ranges, p, progress=as_progress(progress))
    from ..core.outputs import output_path, safe_name

    out = output_path(out_dir, safe_name(name or path.stem, "dataset"))
    extra = run.summary()
    extra["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    with atomic_dir(out) as tmp:
        summary = write_outputs(tmp, run.result, run.proxigram, extra)
    summary["out_dir"] = str(out)
    return summary


def check_outputs(
    files: list[str],
    out_dir: str | os.PathLike,
    ranges: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Result folders of ``files`` in ``out_dir``, checked before anything runs.

    Raises
    ------
    FileNotFoundError
        An input is missing.
    OutputExistsError
        A result folder exists (without ``overwrite``) or is or holds an input.
    """
    from ..core.outputs import check_output

    inputs = [str(Path(f)) for f in files] + ([str(ranges)] if ranges else [])
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: no such file")
    out = Path(out_dir)
    check_output(out, inputs, overwrite=True)  # never a folder that is an input
    return [
        check_output(out / nm, inputs, overwrite=overwrite) for nm in result_folder_names(files)
    ]


def _segment_item(item: tuple[str, str], **kwargs) -> dict[str, Any]:
    path, name = item
    return segment_file(path, name=name, **kwargs)


def run_batch(
    files: list[str],
    out_dir: str | os.PathLike,
    ranges: str | None = None,
    params: SegmentParams | None = None,
    *,
    options: BatchOptions | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    **values: Any,
) -> list[dict[str, Any]]:
    """Segment ``files`` in parallel with dask; one summary per file (input order).

    Parameters
    ----------
    params : SegmentParams, optional
        The segmentation (sent to the workers as it is); ``values`` that are
        fields of :class:`~napari_interfaces.apt.workflows.SegmentParams`
        (``method="hed"``) are applied to it, those of :class:`BatchOptions`
        (``workers=2``) to ``options``.
    options : BatchOptions, optional
        ``scheduler``: address of a running scheduler (``tcp://host:8786``; a
        refused address fails within seconds); ``"inline"`` computes here; a
        ``LocalCluster`` with ``workers`` processes x ``threads`` threads
        otherwise (capped so that workers x threads <= the CPU count).
    overwrite : bool
        Replace existing result folders (refused otherwise, before any work).
    """
    from ..core.runner import run_tasks

    names = {q.name for q in BatchOptions.params()}
    opts = BatchOptions.of(options, **{k: v for k, v in values.items() if k in names})
    p = SegmentParams.of(params, **{k: v for k, v in values.items() if k not in names})
    progress = as_progress(progress)
    files = [str(Path(f)) for f in files]
    check_outputs(files, out_dir, ranges, overwrite)
    from ..core.outputs import cleanup_stale

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    cleanup_stale(out_dir)  # temporary result folders of a killed run
    items = list(zip(files, result_folder_names(files)))
    progress.start(len(items), f"segmenting {len(files)} file(s)")
    results: dict[str, dict] = {}

    def collect(summary: dict[str, Any]) -> None:
        results[summary["input"]] = summary
        progress.advance()

    run_tasks(
        _segment_item,
        items,
        on_result=collect,
        kwargs={
            "out_dir": str(out_dir),
            "ranges": ranges,
            "params": p,
            "torch_threads": opts.threads,
        },
        scheduler=opts.scheduler,
        workers=opts.workers,
        threads_per_worker=opts.threads,
        per_task=1,
        progress=progress,
    )
    return [results[str(Path(f))] for f in files]
