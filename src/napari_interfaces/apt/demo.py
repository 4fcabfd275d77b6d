"""APT demo: synthetic layered specimen -> composition voxels -> interfaces -> phases + proxigram.

Run by ``napari-interfaces demo`` (see :mod:`napari_interfaces.demo`): writes
``phases.tif``, ``proxigram.csv``, ``proxigram.png`` and ``summary.json``
into ``out_dir`` and returns napari layers (Al composition, edge
probability, phases).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["DEFAULT_METHOD", "run_demo"]

#: The default method of the pipeline (see :func:`.interfaces.find_interfaces`).
DEFAULT_METHOD = "auto"


def _default_method() -> str:
    """The method the demo runs (the pipeline's default)."""
    return DEFAULT_METHOD


def run_demo(out_dir: str | Path, progress: Progress | None = None) -> list[tuple[Any, dict, str]]:
    """Run the APT interfaces demo; returns LayerDataTuples."""
    from .batch import write_outputs
    from .dataset import APTDataset
    from .interfaces import find_interfaces
    from .metrics import evaluate_synthetic
    from .synthetic import synthesize

    progress = as_progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    synth = synthesize("layered", size_nm=(12.0, 12.0, 24.0), seed=7, progress=progress)
    from .workflows import prepare_interfaces

    ds = APTDataset.from_arrays(synth.cloud, synth.ranges, progress=progress)
    _, atoms, vol = prepare_interfaces(ds, voxel=1.0, progress=progress)
    method = _default_method()
    res = find_interfaces(vol, method, axes="zyx", progress=progress)
    ev = evaluate_synthetic(synth, res, atoms)
    prox = ev.pop("proxigram", None)
    if prox is None and res.found:
        from .proxigram import proxigram

        prox = proxigram(res.labels, res.grid, atoms)
    extra = {
        "dataset": "synthetic layered γ/γ' (seed 7, 12 x 12 x 24 nm)",
        "n_atoms": int(atoms.n),
        "accuracy": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_outputs(out, res, prox, extra)
    if prox is not None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 3.6), dpi=110)
        ax = fig.add_subplot(111)
        prox.plot(ax, title=f"proxigram ({method}); dashed: true profile")
        d = np.linspace(prox.distance_nm[0], prox.distance_nm[-1], 200)
        tp = synth.true_profile(d)
        for e in prox.elements:
            ax.plot(d, tp[e], "k--", lw=0.7)
        fig.tight_layout()
        fig.savefig(out / "proxigram.png")
    kw = vol.grid.layer_kwargs()
    al = vol.composition(1.0)[0][vol.elements.index("Al")] * 100
    layers: list[tuple[Any, dict, str]] = [
        (al.astype(np.float32), {"name": "Al at.% (demo)", "colormap": "magma", **kw}, "image")
    ]
    if res.edge_prob is not None:
        layers.append(
            (
                res.edge_prob,
                {
                    "name": "edge probability",
                    "colormap": "gray",
                    "blending": "additive",
                    "visible": False,
                    **kw,
                },
                "image",
            )
        )
    layers.append((res.labels, {"name": f"phases ({method})", "opacity": 0.5, **kw}, "labels"))
    return layers
