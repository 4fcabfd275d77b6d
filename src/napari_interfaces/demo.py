"""``napari-interfaces demo``: the main job, end to end, on built-in data.

Each pipeline contributes ``run_demo(out_dir, progress) -> list[LayerDataTuple]``
in its ``demo`` module. The demo makes small seeded data, runs the pipeline,
writes results (TIFF, CSV, JSON, PNG) into ``out_dir/<pipeline>/`` and returns
layers for the GUI view (``gui``). No Qt is imported here.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.progress import Progress, as_progress
from .core.spec import Spec, param

__all__ = ["PIPELINES", "DemoOptions", "available_pipelines", "run_demo"]

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


@dataclass(frozen=True)
class DemoOptions(Spec):
    """Where the demo writes and which pipelines it runs."""

    out: Path = param(Path("demo-results"), "output folder", metavar="FOLDER", gui=False)
    only: str | None = param(
        None,
        "comma-separated subset of pipelines: " + ", ".join(PIPELINES),
        none="all",
        metavar="NAMES",
        gui=False,
    )
    overwrite: bool = param(False, "replace the results of an earlier run", gui=False)
    gui: bool = param(False, "open the results in napari", gui=False)

    def pipelines(self) -> list[str] | None:
        """The chosen pipelines (``None``: all)."""
        from .core.errors import ParameterError

        if self.only is None:
            return None
        names = [n.strip() for n in self.only.split(",") if n.strip()]
        if not names:
            raise ParameterError(
                "only", f"names no pipeline ({self.only!r}); choose from {', '.join(PIPELINES)}"
            )
        return names


def _load(name: str):
    # A missing demo module is a packaging bug: let the import error show.
    return importlib.import_module(PIPELINES[name][0])


def available_pipelines() -> list[str]:
    """The pipelines the demo runs, in order (every one ships its demo module)."""
    return list(PIPELINES)


def check_demo(
    out_dir: str | Path, pipelines: list[str] | None = None, *, overwrite: bool = False
) -> list[str]:
    """Validate the demo's parameters before anything is written; return the pipelines.

    Raises
    ------
    InputError
        An unknown pipeline name, or (without ``overwrite``) an existing
        result folder ``out_dir/<pipeline>`` or ``out_dir/demo_summary.json``.
    """
    from .core.errors import ParameterError
    from .core.outputs import check_output

    names = list(pipelines) if pipelines else available_pipelines()
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ParameterError(
            "only", f"unknown demo pipeline(s) {unknown}; choose from {list(PIPELINES)}"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError("out", f"{out_dir} is a file, not a folder")
    for target in [out_dir / n for n in names] + [out_dir / "demo_summary.json"]:
        check_output(target, overwrite=overwrite)
    return names


def run_demo(
    out_dir: str | Path,
    pipelines: list[str] | None = None,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, list[tuple[Any, dict, str]]]:
    """Run the demo of each pipeline and write its results.

    Parameters
    ----------
    out_dir : path
        Results go to ``out_dir/<pipeline>/``; ``out_dir/demo_summary.json``
        lists every file written and the time each pipeline took. Each
        pipeline's folder is written atomically (a temporary sibling folder
        renamed in one step), so a failed or killed run leaves the previous
        results, never a mixture.
    pipelines : list of str, optional
        Subset of :data:`PIPELINES` (default: all).
    progress : Progress, optional
        Progress and cancellation.
    overwrite : bool
        Replace existing results (default: refuse them with an
        :class:`~napari_interfaces.core.errors.OutputExistsError`).

    Returns
    -------
    dict
        Pipeline name -> napari LayerDataTuples for the GUI view.
    """
    from .core.outputs import atomic_dir, atomic_file, cleanup_stale

    progress = as_progress(progress)
    names = check_demo(out_dir, pipelines, overwrite=overwrite)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cleanup_stale(out_dir)
    layers: dict[str, list] = {}
    summary: dict[str, Any] = {"out_dir": str(out_dir.resolve()), "pipelines": {}}
    for name in names:
        module = _load(name)
        t0 = time.perf_counter()
        with atomic_dir(out_dir / name) as tmp:
            layers[name] = module.run_demo(tmp, progress)
            files = sorted(
                f"{name}/{p.relative_to(tmp).as_posix()}" for p in tmp.rglob("*") if p.is_file()
            )
        summary["pipelines"][name] = {
            "description": PIPELINES[name][1],
            "seconds": round(time.perf_counter() - t0, 2),
            "files": files,
            "layers": [f"{kw.get('name', '?')} ({kind})" for _, kw, kind in layers[name]],
        }
    with atomic_file(out_dir / "demo_summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return layers
