"""``napari-interfaces demo``: the main job, end to end, on built-in data.

Each pipeline contributes ``run_demo(out_dir, progress) -> list[LayerDataTuple]``
in its ``demo`` module. The demo makes small seeded data, runs the pipeline,
writes results (TIFF, CSV, JSON, PNG) into ``out_dir/<pipeline>/`` and returns
layers for ``--gui``. No Qt is imported here.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

from .core.progress import Progress, as_progress

__all__ = ["PIPELINES", "available_pipelines", "run_demo"]

#: name -> (module, one-line description), in the order the demo runs them.
PIPELINES: dict[str, tuple[str, str]] = {
    "apt": (
        "napari_interfaces.apt.demo",
        "APT: synthetic layered specimen -> composition voxels -> interfaces -> phases + proxigram",
    ),
    "hrtem": (
        "napari_interfaces.simulate.demo",
        "HRTEM: Au nanoparticle on amorphous carbon -> multislice image + ground-truth labels",
    ),
    "segment": (
        "napari_interfaces.segment.demo",
        "Segment: simulated micrograph -> shipped U-Net -> particle labels",
    ),
    "cluster": (
        "napari_interfaces.cluster.demo",
        "Cluster: synthetic order/disorder micrograph -> chip communities -> labels",
    ),
}


def _load(name: str):
    module_name = PIPELINES[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def available_pipelines() -> list[str]:
    """Pipelines whose demo module is installed."""
    return [name for name in PIPELINES if _load(name) is not None]


def run_demo(
    out_dir: str | Path,
    pipelines: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, list[tuple[Any, dict, str]]]:
    """Run the demo of each pipeline and write its results.

    Parameters
    ----------
    out_dir : path
        Results go to ``out_dir/<pipeline>/``; ``out_dir/demo_summary.json``
        lists every file written and the time each pipeline took.
    pipelines : list of str, optional
        Subset of :data:`PIPELINES` (default: all available).
    progress : Progress, optional
        Progress and cancellation.

    Returns
    -------
    dict
        Pipeline name -> napari LayerDataTuples for the ``--gui`` view.
    """
    progress = as_progress(progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = pipelines or available_pipelines()
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ValueError(f"unknown demo pipeline(s) {unknown}; choose from {list(PIPELINES)}")
    if not names:
        raise RuntimeError("no pipeline demo is installed")
    layers: dict[str, list] = {}
    summary: dict[str, Any] = {"out_dir": str(out_dir.resolve()), "pipelines": {}}
    for name in names:
        module = _load(name)
        if module is None:
            raise ValueError(f"demo pipeline {name!r} is not available in this installation")
        sub = out_dir / name
        sub.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        layers[name] = module.run_demo(sub, progress)
        summary["pipelines"][name] = {
            "description": PIPELINES[name][1],
            "seconds": round(time.perf_counter() - t0, 2),
            "files": sorted(str(p.relative_to(out_dir)) for p in sub.rglob("*") if p.is_file()),
            "layers": [f"{kw.get('name', '?')} ({kind})" for _, kw, kind in layers[name]],
        }
    (out_dir / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    return layers
