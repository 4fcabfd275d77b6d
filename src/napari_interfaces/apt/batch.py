"""Batch segmentation of many APT files with dask ("send your code and push a button").

:func:`segment_file` does one dataset: read point cloud and ranges ->
atoms (molecular ions decomposed) -> composition voxels -> phases (HED, iso
or GMM) -> proxigram, and writes into ``out_dir/<stem>/``:

* ``phases.tif``: 3D labels (ImageJ TIFF with voxel size; full grid in Info)
* ``proxigram.csv``: ``distance_nm``, then per element ``<El>_at%`` and
  ``<El>_err_at%`` (counting statistics), then ``n_atoms``
* ``summary.json``: grid origin, voxel size and shape (voxels and nm),
  phases with mean composition, interfaces found, timing

:func:`run_batch` maps it over files on a dask ``distributed`` cluster: a
``LocalCluster`` (``workers`` processes, one thread each, so that workers x
threads never exceeds the cores) by default, or an existing scheduler
address (a real HPC cluster, e.g. started with dask-jobqueue).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..core.progress import Progress, as_progress

__all__ = ["run_batch", "segment_file", "write_outputs"]


def _ranges_for(path: Path, ranges: str | None):
    from ..io.ranges import find_range_file, read_ranges

    if ranges:
        return read_ranges(ranges)
    found = find_range_file(path)
    if found is None:
        raise FileNotFoundError(f"{path}: no range file given (--ranges) and none beside it")
    return read_ranges(found)


def write_outputs(out: Path, result, prox, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write phases.tif, proxigram.csv (if any) and summary.json; return the summary."""
    from ..io.apt_volume import write_volume_tiff

    out.mkdir(parents=True, exist_ok=True)
    g = result.grid
    write_volume_tiff(
        out / "phases.tif",
        result.labels.astype("uint16"),
        g,
        {"phases": result.phases, "method": result.method},
    )
    if prox is not None:
        prox.to_csv(out / "proxigram.csv")
    shape = list(result.labels.shape)
    summary = {
        "grid": {
            "axes": g.axes,
            "origin_nm": [float(v) for v in g.origin],
            "voxel_size_nm": [float(v) for v in g.spacing],
            "shape_voxels": shape,
            "shape_nm": [float(n * s) for n, s in zip(shape, g.spacing)],
        },
        "method": result.method,
        "message": result.message,
        "interfaces_found": len(result.interfaces),
        "interfaces": [list(p) for p in result.interfaces],
        "phases": result.phases,
        "proxigram_reference_phase": None if prox is None else prox.phase,
        **(extra or {}),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def segment_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    ranges: str | None = None,
    method: str = "hed",
    axis: str = "zyx",
    voxel: float = 1.0,
    weights: str = "auto",
    bin_nm: float = 0.25,
    torch_threads: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Segment one point-cloud file and write its outputs (see module docstring)."""
    from ..io.apt_pointcloud import read_pointcloud
    from .interfaces import atoms_from_cloud, find_interfaces, volume_from_atoms
    from .proxigram import proxigram

    progress = as_progress(progress)
    t0 = time.perf_counter()
    path = Path(path)
    if method == "hed":
        import torch

        torch.set_num_threads(max(1, int(torch_threads)))
    cloud = read_pointcloud(path)
    rt = _ranges_for(path, ranges)
    atoms = atoms_from_cloud(cloud, rt)
    vol = volume_from_atoms(atoms, voxel)
    t_read = time.perf_counter() - t0
    res = find_interfaces(vol, method, axes=axis, weights=weights, progress=progress)
    prox = proxigram(res.labels, res.grid, atoms, bin_nm=bin_nm) if res.found else None
    out = Path(out_dir) / path.stem
    extra = {
        "input": str(path),
        "n_ions": int(cloud.n_ions),
        "n_atoms": int(atoms.n),
        "elements": atoms.elements,
        "axes": axis,
        "seconds": {
            "read_voxelize": round(t_read, 2),
            "total": round(time.perf_counter() - t0, 2),
        },
    }
    summary = write_outputs(out, res, prox, extra)
    summary["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    summary["out_dir"] = str(out)
    return summary


def run_batch(
    files: list[str],
    out_dir: str | os.PathLike,
    ranges: str | None = None,
    method: str = "hed",
    axis: str = "zyx",
    voxel: float = 1.0,
    weights: str = "auto",
    scheduler: str | None = None,
    workers: int = 1,
    threads: int = 1,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Segment ``files`` in parallel with dask distributed; one summary per file.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); a
        ``LocalCluster`` with ``workers`` processes x ``threads`` threads
        otherwise (capped so that workers x threads <= the CPU count).
    """
    from dask.distributed import Client, LocalCluster, as_completed

    progress = as_progress(progress)
    files = [str(Path(f)) for f in files]
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: no such file")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cores = os.cpu_count() or 1
        workers = max(1, min(int(workers), cores))
        threads = max(1, min(int(threads), cores // workers))
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",
            silence_logs=40,
        )
        client = Client(cluster)
    try:
        futures = client.map(
            segment_file,
            files,
            out_dir=str(out_dir),
            ranges=ranges,
            method=method,
            axis=axis,
            voxel=voxel,
            weights=weights,
            torch_threads=threads,
            pure=False,
        )
        progress.start(len(futures), f"segmenting {len(files)} file(s)")
        results: dict[str, dict] = {}
        for fut in as_completed(futures):
            s = fut.result()
            results[s["input"]] = s
            progress.advance()
        return [results[f] for f in files]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
